//! The distinct ports of one (source, bin) of the Sentinel port-scan rule, in first-seen
//! order, with the first few kept inline. Nearly every public source on a busy link (and
//! every source of a spoofed flood) sends to one or two ports per bin before its bin
//! closes; keeping those inline saves a heap allocation and a free per source, which
//! was a sixth of the rule's CPU under a SYN flood.

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
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// The ports, leaving the list empty.
    pub fn take(&mut self) -> Vec<u16> {
        let ports = self.as_slice().to_vec();
        *self = PortList::default();
        ports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_insertion_order_across_the_spill_and_empties_on_take() {
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
        assert_eq!(l.take(), want);
        assert_eq!(l.len(), 0);
        assert!(matches!(l, PortList::Inline { len: 0, .. }));
    }
}
