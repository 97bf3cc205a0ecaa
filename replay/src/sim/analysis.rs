//! Per-graph analysis shared by inference and the driver: which spans are replayable,
//! their self time, and how each span's children group into sequential stages.

use crate::model::{CallGraph, CallType};

/// Whether a call of this type is asynchronous (the caller does not wait): message
/// queue calls. Every other type (rpc, http, db, mc, userDefined, internal, unknown) is
/// synchronous.
pub(crate) fn is_async(ct: CallType) -> bool {
    ct == CallType::Mq
}

/// Reusable buffers for [`Analysis::run`].
#[derive(Default)]
pub(crate) struct Analysis {
    /// The span is replayed (its callee is known and its parent is replayed).
    pub keep: Vec<bool>,
    /// Self time: duration minus the time covered by its synchronous children (ns, >= 0).
    pub self_ns: Vec<u64>,
    /// Children of span `i`: `child[child_off[i]..child_off[i + 1]]`, by (start, index).
    pub child_off: Vec<u32>,
    /// See `child_off`.
    pub child: Vec<u32>,
    /// Stage of span `i` among its parent's kept children (0 for the root and dropped spans).
    pub stage: Vec<u32>,
    /// Number of stages of span `i`'s kept children.
    pub num_stages: Vec<u32>,
    fill: Vec<u32>,
}

impl Analysis {
    /// Analyses `g`; `known(i)` says whether span `i`'s callee can be simulated.
    pub fn run(&mut self, g: &CallGraph, known: impl Fn(usize) -> bool) {
        let n = g.spans.len();
        self.keep.clear();
        self.keep.resize(n, false);
        self.self_ns.clear();
        self.self_ns.resize(n, 0);
        self.stage.clear();
        self.stage.resize(n, 0);
        self.num_stages.clear();
        self.num_stages.resize(n, 0);
        self.child_off.clear();
        self.child_off.resize(n + 1, 0);
        self.fill.clear();
        self.fill.resize(n, 0);
        // keep flags (parents precede children) and child counts
        for (i, s) in g.spans.iter().enumerate() {
            match s.parent {
                None => self.keep[i] = i == 0 && known(i),
                Some(p) if (p as usize) < i => {
                    self.keep[i] = self.keep[p as usize] && known(i);
                    self.child_off[p as usize + 1] += 1;
                }
                // a malformed parent (not earlier): never replayed
                Some(_) => {}
            }
        }
        for i in 0..n {
            self.child_off[i + 1] += self.child_off[i];
        }
        self.child.clear();
        self.child.resize(self.child_off[n] as usize, 0);
        for (i, s) in g.spans.iter().enumerate() {
            if let Some(p) = s.parent
                && (p as usize) < i
            {
                let p = p as usize;
                let at = self.child_off[p] + self.fill[p];
                self.child[at as usize] = i as u32;
                self.fill[p] += 1;
            }
        }
        for p in 0..n {
            let (a, b) = (self.child_off[p] as usize, self.child_off[p + 1] as usize);
            let kids = &mut self.child[a..b];
            // children are in rpc-id order; sort by start when they are not already
            if kids
                .windows(2)
                .any(|w| g.spans[w[0] as usize].start_ns > g.spans[w[1] as usize].start_ns)
            {
                kids.sort_by_key(|&c| (g.spans[c as usize].start_ns, c));
            }
            let ps = &g.spans[p];
            let (p0, p1) = (ps.start_ns, ps.end_ns());
            // union of synchronous children's intervals clipped to the parent
            let mut covered = 0u64;
            let mut cur: Option<(u64, u64)> = None;
            // stages of kept children
            let mut stage = 0u32;
            let mut stage_end = 0u64;
            let mut stage_has_sync = false;
            let mut any_kept = false;
            for &c in kids.iter() {
                let cs = &g.spans[c as usize];
                let sync = !is_async(cs.call_type);
                let (c0, c1) = (cs.start_ns, cs.end_ns());
                if sync {
                    let (a0, a1) = (c0.clamp(p0, p1), c1.clamp(p0, p1));
                    if a1 > a0 {
                        match &mut cur {
                            Some((_, e)) if a0 <= *e => *e = (*e).max(a1),
                            _ => {
                                if let Some((s, e)) = cur {
                                    covered += e - s;
                                }
                                cur = Some((a0, a1));
                            }
                        }
                    }
                }
                if self.keep[c as usize] {
                    any_kept = true;
                    if stage_has_sync && c0 >= stage_end {
                        stage += 1;
                        stage_has_sync = false;
                    }
                    if sync {
                        stage_end = if stage_has_sync {
                            stage_end.max(c1)
                        } else {
                            c1
                        };
                        stage_has_sync = true;
                    }
                    self.stage[c as usize] = stage;
                }
            }
            if let Some((s, e)) = cur {
                covered += e - s;
            }
            self.self_ns[p] = ps.duration_ns.saturating_sub(covered);
            self.num_stages[p] = if any_kept { stage + 1 } else { 0 };
        }
    }

    /// Kept children of `p`, by (start, index).
    pub fn kept_children(&self, p: usize) -> impl Iterator<Item = u32> + '_ {
        let (a, b) = (self.child_off[p] as usize, self.child_off[p + 1] as usize);
        self.child[a..b]
            .iter()
            .copied()
            .filter(|&c| self.keep[c as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RpcId, Span, Sym};

    fn span(id: &[u32], parent: Option<u32>, start: u64, dur: u64, ct: CallType) -> Span {
        let mut s = Span::new(RpcId(id.to_vec()));
        s.parent = parent;
        s.start_ns = start;
        s.duration_ns = dur;
        s.call_type = ct;
        s.dm = Sym(5);
        s
    }

    #[test]
    fn self_time_and_stages() {
        // root [0,100]; a [10,30], b [20,40] overlap (stage 0); c [50,60] (stage 1);
        // mq d [55,200] async (stage 1, not subtracted)
        let g = CallGraph {
            trace_id: "t".into(),
            service: Sym(5),
            spans: vec![
                span(&[0], None, 0, 100, CallType::Http),
                span(&[0, 1], Some(0), 10, 20, CallType::Rpc),
                span(&[0, 2], Some(0), 20, 20, CallType::Rpc),
                span(&[0, 3], Some(0), 50, 10, CallType::Db),
                span(&[0, 4], Some(0), 55, 145, CallType::Mq),
            ],
        };
        let mut a = Analysis::default();
        a.run(&g, |_| true);
        assert_eq!(a.self_ns[0], 100 - 30 - 10);
        assert_eq!(&a.stage[1..], &[0, 0, 1, 1]);
        assert_eq!(a.num_stages[0], 2);
        assert_eq!(a.kept_children(0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        // dropping b keeps its time subtracted but removes it from the stages
        a.run(&g, |i| i != 2);
        assert_eq!(a.self_ns[0], 60);
        assert!(!a.keep[2]);
        assert_eq!(a.kept_children(0).collect::<Vec<_>>(), vec![1, 3, 4]);
        // children longer than the parent: self time clamps to 0
        let mut g2 = g.clone();
        g2.spans[1].duration_ns = 500;
        a.run(&g2, |_| true);
        assert_eq!(a.self_ns[0], 10);
        g2.spans[1].start_ns = 0;
        a.run(&g2, |_| true);
        assert_eq!(a.self_ns[0], 0);
    }

    #[test]
    fn dropped_root_drops_all() {
        let g = CallGraph {
            trace_id: "t".into(),
            service: Sym(5),
            spans: vec![
                span(&[0], None, 0, 100, CallType::Http),
                span(&[0, 1], Some(0), 10, 20, CallType::Rpc),
            ],
        };
        let mut a = Analysis::default();
        a.run(&g, |i| i != 0);
        assert_eq!(a.keep, vec![false, false]);
    }
}
