//! The compiled model: the scenario with names resolved to small dense ids, shared (behind an
//! `Arc`) by a simulation and all its forks because it never changes during a run.
//!
//! Also the ECS components that mirror the model in the `bevy_ecs` world (see [`crate::ecs`]).

use crate::dist::DurationDist;
use crate::scenario::*;
use serde::{Deserialize, Serialize};

/// Dense id of a node (index into the scenario's `nodes`).
pub type NodeId = u32;
/// Dense id of a service (index into the scenario's `services`).
pub type ServiceId = u32;
/// Dense id of an operation, unique over all services.
pub type OpId = u32;
/// Dense id of an edge. Edges `0..workloads` are the client edges of the workloads, in order.
pub type EdgeId = u32;
/// A pod slot. Slots of terminated pods are reused; a slot's incarnation is its generation.
pub type PodId = u32;

/// A resolved downstream call.
#[derive(Clone, Debug, PartialEq)]
pub struct CallStatic {
    /// The edge used.
    pub edge: EdgeId,
    /// The callee operation.
    pub op: OpId,
    /// Probability the call is made.
    pub probability: f64,
    /// The worker waits for it.
    pub sync: bool,
    /// A failure is tolerated.
    pub optional: bool,
}

/// A resolved operation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpStatic {
    /// Owning service.
    pub service: ServiceId,
    /// Name.
    pub name: String,
    /// CPU demand on one core.
    pub cpu: DurationDist,
    /// Disk bytes per request.
    pub io_bytes: u64,
    /// Memory held per admitted request.
    pub memory_per_request: u64,
    /// Call stages.
    pub stages: Vec<Vec<CallStatic>>,
}

/// A resolved edge (client -> entry edges have `from = None`).
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeStatic {
    /// Caller service, or `None` for external clients.
    pub from: Option<ServiceId>,
    /// Callee service.
    pub to: ServiceId,
    /// The scenario's settings (for a client edge: built from the workload's client settings).
    pub spec: EdgeSpec,
}

/// The whole compiled model.
#[derive(Clone, Debug)]
pub struct Topology {
    /// The scenario it was compiled from.
    pub scenario: Scenario,
    /// Operations, grouped by service in scenario order.
    pub ops: Vec<OpStatic>,
    /// First op id of each service.
    pub service_first_op: Vec<OpId>,
    /// Edges: client edges first (one per workload), then scenario edges and implicit ones.
    pub edges: Vec<EdgeStatic>,
    /// Per workload: the operation mix as (op, cumulative weight in `[0, 1]`).
    pub mixes: Vec<Vec<(OpId, f64)>>,
    /// (caller, callee) -> edge, for service-to-service edges.
    edge_index: std::collections::BTreeMap<(ServiceId, ServiceId), EdgeId>,
}

impl Topology {
    /// Resolves names to ids. The scenario must already be valid ([`Scenario::validate`]).
    pub fn compile(scenario: &Scenario) -> Result<Topology, ScenarioError> {
        scenario.validate()?;
        let sc = scenario;
        let mut service_first_op = Vec::new();
        let mut ops = Vec::new();
        for (si, s) in sc.services.iter().enumerate() {
            service_first_op.push(ops.len() as OpId);
            for o in &s.operations {
                ops.push(OpStatic {
                    service: si as ServiceId,
                    name: o.name.clone(),
                    cpu: o.cpu.clone(),
                    io_bytes: o.io.0,
                    memory_per_request: o.memory_per_request.unwrap_or(s.memory_per_request).0,
                    stages: vec![],
                });
            }
        }
        let op_of = |svc: usize, name: Option<&str>| -> OpId {
            let first = service_first_op[svc];
            match name {
                None => first,
                Some(n) => {
                    first
                        + sc.services[svc]
                            .operations
                            .iter()
                            .position(|o| o.name == n)
                            .unwrap_or(0) as OpId
                }
            }
        };
        let mut edges: Vec<EdgeStatic> = sc
            .workload
            .iter()
            .map(|w| {
                let to = sc.service_index(&w.entry).unwrap_or(0) as ServiceId;
                let mut spec =
                    EdgeSpec::default_for("client", &w.entry, sc.services[to as usize].kind);
                spec.protocol = Protocol::Http;
                spec.timeout = w.client.timeout;
                spec.retry = w.client.retry.clone();
                spec.latency = w.client.latency.clone();
                EdgeStatic {
                    from: None,
                    to,
                    spec,
                }
            })
            .collect();
        for e in &sc.edges {
            edges.push(EdgeStatic {
                from: sc.service_index(&e.from).map(|x| x as ServiceId),
                to: sc.service_index(&e.to).unwrap_or(0) as ServiceId,
                spec: e.clone(),
            });
        }
        let mut op_idx = 0usize;
        for (si, s) in sc.services.iter().enumerate() {
            for o in &s.operations {
                let mut stages = Vec::new();
                for st in &o.stages {
                    let mut calls = Vec::new();
                    for c in &st.calls {
                        let to = sc.service_index(&c.service).unwrap_or(0);
                        let edge = match edges.iter().position(|e| {
                            e.from == Some(si as ServiceId) && e.to == to as ServiceId
                        }) {
                            Some(e) => e,
                            None => {
                                edges.push(EdgeStatic {
                                    from: Some(si as ServiceId),
                                    to: to as ServiceId,
                                    spec: EdgeSpec::default_for(
                                        &s.name,
                                        &c.service,
                                        sc.services[to].kind,
                                    ),
                                });
                                edges.len() - 1
                            }
                        };
                        calls.push(CallStatic {
                            edge: edge as EdgeId,
                            op: op_of(to, c.operation.as_deref()),
                            probability: c.probability,
                            sync: c.mode == CallMode::Sync,
                            optional: c.optional,
                        });
                    }
                    stages.push(calls);
                }
                ops[op_idx].stages = stages;
                op_idx += 1;
            }
        }
        let mixes = sc
            .workload
            .iter()
            .map(|w| {
                let svc = sc.service_index(&w.entry).unwrap_or(0);
                if w.mix.is_empty() {
                    return vec![(op_of(svc, None), 1.0)];
                }
                let total: f64 = w.mix.iter().map(|m| m.weight).sum();
                let mut acc = 0.0;
                w.mix
                    .iter()
                    .map(|m| {
                        acc += m.weight / total;
                        (op_of(svc, Some(&m.operation)), acc)
                    })
                    .collect()
            })
            .collect();
        let edge_index = edges
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.from.map(|f| ((f, e.to), i as EdgeId)))
            .rev() // the first edge of a pair wins
            .collect();
        Ok(Topology {
            scenario: sc.clone(),
            ops,
            service_first_op,
            edges,
            mixes,
            edge_index,
        })
    }

    /// Number of services.
    pub fn num_services(&self) -> usize {
        self.scenario.services.len()
    }

    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.scenario.nodes.len()
    }

    /// A service's spec.
    pub fn service(&self, s: ServiceId) -> &ServiceSpec {
        &self.scenario.services[s as usize]
    }

    /// Id of a service by name.
    pub fn service_id(&self, name: &str) -> Option<ServiceId> {
        self.scenario.service_index(name).map(|x| x as ServiceId)
    }

    /// Id of a node by name.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.scenario
            .nodes
            .iter()
            .position(|n| n.name == name)
            .map(|x| x as NodeId)
    }

    /// Id of the edge from `from` to `to` (services), if calls use one.
    pub fn edge_id(&self, from: ServiceId, to: ServiceId) -> Option<EdgeId> {
        self.edge_index.get(&(from, to)).copied()
    }

    /// Id of an operation by service and name.
    pub fn op_id(&self, service: ServiceId, name: &str) -> Option<OpId> {
        let first = *self.service_first_op.get(service as usize)?;
        self.service(service)
            .operations
            .iter()
            .position(|o| o.name == name)
            .map(|i| first + i as OpId)
    }

    /// The pod template (resources etc.) of a service under config version `v` (0 = base).
    pub fn template(&self, s: ServiceId, v: u32) -> PodTemplate {
        let spec = self.service(s);
        let mut t = PodTemplate {
            resources: spec.resources,
            crash_on_start: false,
            broken: vec![],
            cpu_factor: 1.0,
        };
        if v > 0
            && let Some(c) = spec.config_versions.get(v as usize - 1)
        {
            if let Some(r) = c.resources {
                t.resources = r;
            }
            t.crash_on_start = c.crash_on_start;
            t.broken = c
                .broken_dependencies
                .iter()
                .filter_map(|n| self.service_id(n))
                .collect();
            t.cpu_factor = c.cpu_factor.unwrap_or(1.0);
        }
        t
    }
}

/// What a config version makes of a pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodTemplate {
    /// Requests and limits.
    pub resources: Resources,
    /// The container exits at start.
    pub crash_on_start: bool,
    /// Callee services this version cannot reach (wrong address).
    pub broken: Vec<ServiceId>,
    /// CPU demand multiplier.
    pub cpu_factor: f64,
}
