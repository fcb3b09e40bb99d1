#!/usr/bin/env bash
# Runs every flowsentry fuzz target for SECONDS each (default 300).
#   bash fuzz/run.sh [SECONDS] [TARGET...]
# Installs cargo-fuzz if missing. cargo-fuzz needs a nightly compiler: it uses the
# installed `nightly` toolchain, or else stable with RUSTC_BOOTSTRAP=1.
# Crashes land in fuzz/artifacts/TARGET/; reproduce with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode pipeline pcap_file)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
if rustup toolchain list | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    echo "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo +stable fuzz)
fi

# Seed corpora from the project's own synthetic captures (never from shared pcaps).
seed_dir=fuzz/target/seed
mkdir -p "$seed_dir" fuzz/corpus/decode fuzz/corpus/pipeline fuzz/corpus/pcap_file
if [ ! -f "$seed_dir/scan.pcap" ]; then
    cargo run --quiet --release --bin flowsentry-synth -- public_syn_scan -o "$seed_dir/scan.pcap"
    cargo run --quiet --release --bin flowsentry-synth -- ipv6_scan -o "$seed_dir/v6.pcap" --nanos
    cargo run --quiet --release --bin flowsentry-synth -- udp_scan_icmp -o "$seed_dir/udp.pcap"
fi
python3 - "$seed_dir" <<'PY'
import os, struct, sys
seed = sys.argv[1]
def frames(path):
    b = open(path, 'rb').read()
    off = 24
    while off + 16 <= len(b):
        incl = struct.unpack_from('<I', b, off + 8)[0]
        yield b[off + 16: off + 16 + incl]
        off += 16 + incl
for name in ('scan', 'v6', 'udp'):
    path = os.path.join(seed, name + '.pcap')
    fs = list(frames(path))
    # decode: link byte 1 (Ethernet) + one frame
    for i, f in enumerate(fs[:40]):
        open(f'fuzz/corpus/decode/{name}-{i}', 'wb').write(b'\x01' + f)
    # pipeline: link byte 1, then [len u16][time step][frame] records
    body = b''.join(struct.pack('<HB', len(f), 1) + f for f in fs[:60])
    open(f'fuzz/corpus/pipeline/{name}', 'wb').write(b'\x01' + body)
    # pcap_file: odd first byte = file as is (first 8 KiB)
    open(f'fuzz/corpus/pcap_file/{name}', 'wb').write(b'\x01' + open(path, 'rb').read()[:8192])
PY

for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${secs}s" >&2
    max_len=4096
    [ "$t" = decode ] && max_len=2048
    [ "$t" = pcap_file ] && max_len=16384
    "${fuzz[@]}" run "$t" "$PWD/fuzz/corpus/$t" -- -max_total_time="$secs" -max_len="$max_len" \
        -rss_limit_mb=1024 -timeout=10 -print_final_stats=1
done
