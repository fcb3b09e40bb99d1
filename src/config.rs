//! Settings: TOML file merged with command-line flags, validated into one [`Config`].
