//! The probabilistic call-graph generator of Luo et al. (SoCC'21), as published in
//! `Cloud-and-Distributed-Systems/Erms` `graphGenerator/microservice_graph_generator.py`,
//! driven by its four distribution tables (embedded from the Erms repository; see
//! `replay/data/erms/`).
//!
//! Algorithm (faithful to the published script):
//! 1. The root `0` (type http, depth 1) is expanded only if `leafMedium(0)`:
//!    `u1 > P(leaf | depth)` and then `u2 < P(medium | depth)`.
//! 2. Breadth first, a queued node with `depth` = number of rpc-id components draws its
//!    number of children `n` from `depthDistribution[depth]` (the smallest `num` whose
//!    `cumsum` exceeds a uniform draw; plus one at depth 1); no row: no children.
//! 3. Each child `i` gets id `parent.i` (0-based, as in the script) and a type from
//!    `communicationParadigm[(depth, n)]` (cumulative rpc, mq, db, memcached; the rest
//!    is http). rpc, mq and http children are queued if `leafMedium(depth)` (the
//!    parent's depth, as in the script).
//!
//! The published generator outputs only rpc ids and types. Names and latencies are
//! added from [`ServiceMarginals`] when given (fitted to a real sample: the seed paper
//! notes the baseline "extends to time-related fields by sampling from training data
//! statistics"); otherwise (or when the marginals are empty) callees are `UNKNOWN` and
//! durations 0. A graph is capped at [`LuoGenerator::MAX_SPANS`] spans.

use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ServiceMarginals, contain_times};
use crate::error::{Error, Result};
use crate::model::{CallGraph, CallType, RpcId, Span, SpanKind, Sym, TraceSet};
use crate::util::FxMap;

const EMB_COMM: &str = include_str!("../../data/erms/communicationParadigm.csv");
const EMB_DEPTH: &str = include_str!("../../data/erms/depthDistribution.csv");
const EMB_LEAF: &str = include_str!("../../data/erms/leafDistribution.csv");
const EMB_NODE: &str = include_str!("../../data/erms/nodeDistribution.csv");

/// The four distribution tables of the Luo/Erms generator.
#[derive(Clone, Debug, Default)]
pub struct LuoTables {
    /// Per depth: (num, cumsum) sorted by num.
    depth: Vec<Vec<(u32, f64)>>,
    /// P(leaf | depth), by depth.
    leaf: Vec<Option<f64>>,
    /// P(medium | depth), by depth.
    medium: Vec<Option<f64>>,
    /// (depth, num) -> cumulative [rpc, mq, db, memcached].
    paradigm: FxMap<(u32, u32), [f64; 4]>,
}

struct Table<'a> {
    name: &'a str,
    cols: Vec<String>,
    rows: Vec<(u64, Vec<&'a str>)>,
}

fn table<'a>(name: &'a str, text: &'a str) -> Result<Table<'a>> {
    let mut lines = text.lines().enumerate();
    let (_, h) = lines.next().ok_or_else(|| Error::Table {
        file: name.into(),
        line: 1,
        message: "empty table".into(),
    })?;
    let cols: Vec<String> = h
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let rows = lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i as u64 + 1, l.split(',').map(str::trim).collect()))
        .collect();
    Ok(Table { name, cols, rows })
}

impl<'a> Table<'a> {
    fn col(&self, c: &str) -> Result<usize> {
        self.cols
            .iter()
            .position(|x| x == c)
            .ok_or_else(|| Error::Table {
                file: self.name.into(),
                line: 1,
                message: format!("missing column `{c}`"),
            })
    }
    fn num<T: std::str::FromStr>(
        &self,
        line: u64,
        row: &[&str],
        i: usize,
        what: &str,
    ) -> Result<T> {
        let s = row.get(i).copied().unwrap_or("");
        // pandas writes integer columns as floats sometimes ("158702052.0")
        s.parse::<T>()
            .ok()
            .or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0)
                    .and_then(|f| format!("{f:.0}").parse().ok())
            })
            .ok_or_else(|| Error::Table {
                file: self.name.into(),
                line,
                message: format!("column `{what}`: `{s}` is not a number"),
            })
    }
}

fn set_at(v: &mut Vec<Option<f64>>, i: usize, x: f64) {
    if v.len() <= i {
        v.resize(i + 1, None);
    }
    v[i] = Some(x);
}

impl LuoTables {
    /// The tables embedded in the crate (Erms @debd2fa0).
    pub fn embedded() -> Self {
        // The embedded tables are tested; an error here would be a build defect.
        Self::from_csv(EMB_COMM, EMB_DEPTH, EMB_LEAF, EMB_NODE).unwrap_or_default()
    }

    /// Loads `communicationParadigm.csv`, `depthDistribution.csv`,
    /// `leafDistribution.csv` and `nodeDistribution.csv` from a directory.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let rd = |n: &str| {
            let p = dir.join(n);
            std::fs::read_to_string(&p).map_err(|e| Error::io(p, e))
        };
        let (c, d, l, n) = (
            rd("communicationParadigm.csv")?,
            rd("depthDistribution.csv")?,
            rd("leafDistribution.csv")?,
            rd("nodeDistribution.csv")?,
        );
        Self::from_csv(&c, &d, &l, &n)
    }

    /// Parses the four tables from CSV text (columns by header name).
    pub fn from_csv(comm: &str, depth: &str, leaf: &str, node: &str) -> Result<Self> {
        let mut t = LuoTables::default();
        let d = table("depthDistribution.csv", depth)?;
        let (cd, cn, cc) = (d.col("depth")?, d.col("num")?, d.col("cumsum")?);
        for (line, r) in &d.rows {
            let dep: usize = d.num(*line, r, cd, "depth")?;
            if dep > 4096 {
                return Err(Error::Table {
                    file: d.name.into(),
                    line: *line,
                    message: "depth too large".into(),
                });
            }
            if t.depth.len() <= dep {
                t.depth.resize(dep + 1, Vec::new());
            }
            t.depth[dep].push((d.num(*line, r, cn, "num")?, d.num(*line, r, cc, "cumsum")?));
        }
        for v in &mut t.depth {
            v.sort_by_key(|a| a.0);
            // make cumsum non-decreasing (it is in the published tables) so that the
            // binary search in `service_num` equals the script's linear "min num" rule
            let mut m = f64::NEG_INFINITY;
            for r in v.iter_mut() {
                m = m.max(r.1);
                r.1 = m;
            }
        }
        let l = table("leafDistribution.csv", leaf)?;
        let (ld, lp) = (l.col("depth")?, l.col("percentage")?);
        for (line, r) in &l.rows {
            let dep: usize = l.num(*line, r, ld, "depth")?;
            set_at(
                &mut t.leaf,
                dep.min(4096),
                l.num(*line, r, lp, "percentage")?,
            );
        }
        let n = table("nodeDistribution.csv", node)?;
        let (nd, np) = (n.col("depth")?, n.col("percentage")?);
        for (line, r) in &n.rows {
            let dep: usize = n.num(*line, r, nd, "depth")?;
            set_at(
                &mut t.medium,
                dep.min(4096),
                n.num(*line, r, np, "percentage")?,
            );
        }
        let c = table("communicationParadigm.csv", comm)?;
        let (xd, xn, xt, xp) = (
            c.col("depth")?,
            c.col("num")?,
            c.col("rpc_type")?,
            c.col("percentage")?,
        );
        let mut raw: FxMap<(u32, u32), [f64; 4]> = FxMap::default();
        for (line, r) in &c.rows {
            let k = (c.num(*line, r, xd, "depth")?, c.num(*line, r, xn, "num")?);
            let p: f64 = c.num(*line, r, xp, "percentage")?;
            let slot = match r.get(xt).copied().unwrap_or("") {
                "rpc" => 0,
                "mq" => 1,
                "db" => 2,
                "memcached" => 3,
                _ => continue,
            };
            raw.entry(k).or_insert([0.0; 4])[slot] = p;
        }
        for (k, p) in raw {
            t.paradigm.insert(
                k,
                [
                    p[0],
                    p[0] + p[1],
                    p[0] + p[1] + p[2],
                    p[0] + p[1] + p[2] + p[3],
                ],
            );
        }
        Ok(t)
    }

    fn leaf_medium(&self, depth: usize, rng: &mut ChaCha8Rng) -> bool {
        let leaf = self.leaf.get(depth).copied().flatten().unwrap_or(1.0);
        let medium = self.medium.get(depth).copied().flatten().unwrap_or(0.0);
        rng.random::<f64>() > leaf && rng.random::<f64>() < medium
    }

    fn service_num(&self, depth: usize, rng: &mut ChaCha8Rng) -> u32 {
        let Some(rows) = self.depth.get(depth).filter(|r| !r.is_empty()) else {
            return 0;
        };
        let u: f64 = rng.random();
        // rows are sorted by num and (checked at load) cumsum is non-decreasing in num,
        // so "the smallest num whose cumsum exceeds u" is a binary search.
        let i = rows.partition_point(|(_, c)| *c <= u);
        let n = rows.get(i).or(rows.last()).map(|r| r.0).unwrap_or(0);
        if depth == 1 { n + 1 } else { n }
    }

    fn rpc_type(&self, depth: usize, num: u32, rng: &mut ChaCha8Rng) -> CallType {
        let u: f64 = rng.random();
        let c = self
            .paradigm
            .get(&(depth as u32, num))
            .copied()
            .unwrap_or([0.0; 4]);
        if u < c[0] {
            CallType::Rpc
        } else if u < c[1] {
            CallType::Mq
        } else if u < c[2] {
            CallType::Db
        } else if u <= c[3] {
            CallType::Mc
        } else {
            CallType::Http
        }
    }
}

/// The Luo et al. generator (see the module docs).
pub struct LuoGenerator {
    tables: LuoTables,
    marginals: Option<ServiceMarginals>,
    rng: ChaCha8Rng,
    next_id: u64,
}

impl LuoGenerator {
    /// Largest graph produced (spans); expansion stops there.
    pub const MAX_SPANS: usize = 100_000;

    /// A generator over the given tables, structure only (names `UNKNOWN`).
    pub fn new(tables: LuoTables, seed: u64) -> Self {
        LuoGenerator {
            tables,
            marginals: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_id: 0,
        }
    }

    /// Adds names and latencies sampled from a real sample's marginals. Empty marginals
    /// ([`ServiceMarginals::is_empty`]: `Default`, or fitted to an empty sample) have
    /// nothing to add: the generator falls back to the tables alone, as with
    /// [`LuoGenerator::new`] (structure only, names `UNKNOWN`).
    pub fn with_marginals(mut self, m: ServiceMarginals) -> Self {
        self.marginals = (!m.is_empty()).then_some(m);
        self
    }

    /// Generates one graph; names refer to the marginals' symbol table (or the
    /// predefined symbols when there are none).
    pub fn generate_one(&mut self) -> CallGraph {
        let rng = &mut self.rng;
        let t = &self.tables;
        let mut spans: Vec<Span> = Vec::with_capacity(16);
        let mut root = Span::new(RpcId::root());
        root.call_type = CallType::Http;
        root.um = Sym::USER;
        root.um_instance = Sym::USER;
        root.kind = SpanKind::Server;
        spans.push(root);
        let mut queue: std::collections::VecDeque<u32> = std::collections::VecDeque::new();
        if t.leaf_medium(0, rng) {
            queue.push_back(0);
        }
        while let Some(p) = queue.pop_front() {
            let depth = spans[p as usize].rpc_id.depth();
            let n = t.service_num(depth, rng);
            for i in 0..n {
                if spans.len() >= Self::MAX_SPANS {
                    break;
                }
                let ty = t.rpc_type(depth, n, rng);
                let mut s = Span::new(spans[p as usize].rpc_id.child(i));
                s.parent = Some(p);
                s.call_type = ty;
                s.kind = SpanKind::Server;
                let idx = spans.len() as u32;
                spans.push(s);
                if matches!(ty, CallType::Rpc | CallType::Mq | CallType::Http)
                    && t.leaf_medium(depth, rng)
                {
                    queue.push_back(idx);
                }
            }
        }
        self.next_id += 1;
        let mut g = CallGraph {
            trace_id: format!("luo-{}", self.next_id),
            service: Sym::UNKNOWN,
            spans,
        };
        g.sort_by_rpc_id();
        if let Some(m) = &self.marginals {
            g.service = m.sample_service(rng);
            for i in 0..g.spans.len() {
                let depth = g.spans[i].rpc_id.depth();
                let ty = g.spans[i].call_type;
                let (dm, iface) = m.sample_callee(rng, depth, ty);
                let um = match g.spans[i].parent {
                    Some(p) => g.spans[p as usize].dm,
                    None => Sym::USER,
                };
                let d = m.sample_duration(rng, ty);
                let s = &mut g.spans[i];
                s.dm = dm;
                s.interface = iface;
                s.um = um;
                s.duration_ns = d;
            }
            contain_times(&mut g, rng);
        }
        g
    }

    /// Generates `n` graphs into a new set (symbols: the marginals' table, if any).
    pub fn generate(&mut self, n: usize) -> TraceSet {
        let symbols = self
            .marginals
            .as_ref()
            .map(|m| m.symbols.clone())
            .unwrap_or_default();
        let graphs = (0..n).map(|_| self.generate_one()).collect();
        TraceSet { symbols, graphs }
    }
}
