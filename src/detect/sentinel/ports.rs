//! The distinct ports of one (source, bin) of the Sentinel port-scan rule that has more
//! than one, in first-seen order, with the first few kept inline. A one-port source (every
//! source of a spoofed flood) holds its port in the table entry itself; most others send
//! to a few ports per bin before it closes, and keeping those inline, in the one
//! allocation such a source makes, saves a second allocation and free.

/// Ports kept without allocating.
const INLINE: usize = 10;

/// A list of distinct ports in insertion order (the caller checks distinctness).
#[derive(Clone, Debug)]
pub enum PortList {
    Inline { len: u8, ports: [u16; INLINE] },
    Heap(Vec<u16>),
}

impl Default for PortList {
    fn default() -> Self {
        PortList::Inline { len: 0, ports: [0; INLINE] }
    }
}

impl PortList {
    #[inline]
    pub fn as_slice(&self) -> &[u16] {
        match self {
            PortList::Inline { len, ports } => &ports[..*len as usize],
            PortList::Heap(v) => v,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    #[inline]
    pub fn contains(&self, port: &u16) -> bool {
        self.as_slice().contains(port)
    }

    #[inline]
    pub fn push(&mut self, port: u16) {
        match self {
            PortList::Inline { len, ports } if (*len as usize) < INLINE => {
                ports[*len as usize] = port;
                *len += 1;
            }
            PortList::Inline { ports, .. } => {
                let mut v = Vec::with_capacity(2 * INLINE);
                v.extend_from_slice(ports);
                v.push(port);
                *self = PortList::Heap(v);
            }
            PortList::Heap(v) => v.push(port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_insertion_order_across_the_spill() {
        let mut l = PortList::default();
        let want: Vec<u16> = (0..40).map(|i| 1000 - i * 7).collect();
        for (i, &p) in want.iter().enumerate() {
            assert!(!l.contains(&p));
            l.push(p);
            assert_eq!(l.len(), i + 1);
            assert_eq!(l.as_slice(), &want[..=i]);
            assert!(matches!(l, PortList::Inline { .. }) == (i < INLINE));
        }
        assert!(l.contains(&1000) && !l.contains(&1));
        assert_eq!(l.as_slice(), want);
    }
}
