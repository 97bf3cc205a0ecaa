//! [`Simulation`]: one episode of one scenario with one seed. Runs the event loop, exposes
//! the control and fault surfaces, the telemetry, and fork / snapshot / restore.

use crate::ecs::{EngineState, build_world, window_schedule};
use crate::engine::{Counters, IoFault, NONE, NetFault, Partition, Runtime, ScriptedRequest};
use crate::model::{EdgeId, NodeId, PodId, ServiceId, Topology};
use crate::scenario::{AutoscalerSpec, MAX_REPLICAS, RetrySpec, Scenario, ScenarioError};
use crate::telemetry::{LogTemplate, Phase, Scrape, Severity, Telemetry};
use crate::time::{SECONDS, SimDuration};
use bevy_ecs::schedule::Schedule;
use bevy_ecs::world::World;
use std::sync::Arc;

/// Errors of the control surface: a target that does not exist or an impossible request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No live pod with this id.
    #[error("unknown or terminated pod {0}")]
    UnknownPod(PodId),
    /// No service with this id or name.
    #[error("unknown service {0}")]
    UnknownService(String),
    /// No node with this id or name.
    #[error("unknown node {0}")]
    UnknownNode(String),
    /// No edge with this id.
    #[error("unknown edge {0}")]
    UnknownEdge(EdgeId),
    /// The service has no such config version.
    #[error("service {service} has no config version {version}")]
    UnknownVersion {
        /// Service name.
        service: String,
        /// Requested version.
        version: u32,
    },
    /// Rollback with no earlier version.
    #[error("service {0} has no earlier config version to roll back to")]
    NothingToRollBack(String),
    /// A value out of range.
    #[error("invalid value for {what}: {why}")]
    InvalidValue {
        /// Which parameter.
        what: &'static str,
        /// Why.
        why: String,
    },
}

/// A snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not a blastradius snapshot, or a different format version.
    #[error("not a blastradius snapshot (bad magic or version)")]
    BadHeader,
    /// The bytes were truncated or altered (checksum mismatch).
    #[error("snapshot is corrupt: {0}")]
    Corrupt(String),
    /// The scenario inside does not validate.
    #[error("snapshot scenario is invalid: {0}")]
    Scenario(#[from] ScenarioError),
}

/// What a pod looks like from outside (a `kubectl get pods` row).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PodInfo {
    /// Slot id.
    pub id: PodId,
    /// Name.
    pub name: String,
    /// Service.
    pub service: ServiceId,
    /// Node (None: unscheduled).
    pub node: Option<NodeId>,
    /// Phase.
    pub phase: Phase,
    /// Ready.
    pub ready: bool,
    /// Restarts.
    pub restarts: u32,
    /// Config version.
    pub config_version: u32,
}

/// One running episode.
///
/// ```
/// use sim_core::prelude::*;
/// let sc = Scenario::from_toml_str(r#"
///     name = "two-tier"
///     duration = "10s"
///     [[nodes]]
///     name = "n0"
///     cpu = "4"
///     memory = "8Gi"
///     [[services]]
///     name = "api"
///     replicas = 2
///     [[services.operations]]
///     name = "get"
///     cpu = { kind = "exponential", mean = "2ms" }
///     [[services.operations.stages]]
///     calls = [{ service = "db" }]
///     [[services]]
///     name = "db"
///     kind = "database"
///     [[services.operations]]
///     name = "query"
///     cpu = { kind = "constant", value = "1ms" }
///     [[workload]]
///     entry = "api"
///     arrivals = { kind = "open", rate = { kind = "constant", rps = 200.0 } }
/// "#).unwrap();
/// let mut sim = Simulation::new(&sc, 42).unwrap();
/// sim.run_to_end();
/// let last = sim.telemetry().last_scrape().unwrap();
/// assert_eq!(last.services[0].name, "api");
/// assert!(last.services[0].rps > 150.0);
/// ```
pub struct Simulation {
    topo: Arc<Topology>,
    world: World,
    schedule: Schedule,
}

impl Simulation {
    /// Builds the model (a warm cluster: initial pods are ready at time 0) for a seed.
    pub fn new(scenario: &Scenario, seed: u64) -> Result<Simulation, ScenarioError> {
        let topo = Arc::new(Topology::compile(scenario)?);
        Ok(Self::from_topology(topo, seed))
    }

    /// Builds a simulation from an already compiled topology (cheap: the topology is shared).
    pub fn from_topology(topo: Arc<Topology>, seed: u64) -> Simulation {
        let rt = Runtime::new(&topo, seed);
        Self::from_parts(topo, rt)
    }

    fn from_parts(topo: Arc<Topology>, rt: Runtime) -> Simulation {
        let world = build_world(&topo, rt);
        Simulation {
            topo,
            world,
            schedule: window_schedule(),
        }
    }

    #[inline]
    fn rt(&self) -> &Runtime {
        &self.world.resource::<EngineState>().0
    }

    #[inline]
    fn rt_mut(&mut self) -> &mut Runtime {
        &mut self.world.resource_mut::<EngineState>().into_inner().0
    }

    fn with_rt<R>(&mut self, f: impl FnOnce(&mut Runtime, &Topology) -> R) -> R {
        let topo = self.topo.clone();
        let rt = &mut self.world.resource_mut::<EngineState>().into_inner().0;
        f(rt, &topo)
    }

    /// The compiled model.
    pub fn topology(&self) -> &Arc<Topology> {
        &self.topo
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.topo.scenario
    }

    /// The ECS world holding the model entities ([`crate::ecs`]).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The episode seed.
    pub fn seed(&self) -> u64 {
        self.rt().seed
    }

    /// Current simulated time (ns).
    pub fn now(&self) -> u64 {
        self.rt().now
    }

    /// When the next scrape window closes (ns, after [`Simulation::now`]): `run_until` of that
    /// time or later takes the scrape.
    pub fn next_scrape_at(&self) -> u64 {
        self.rt().next_tick
    }

    /// End of the episode (ns): arrivals stop there.
    pub fn end(&self) -> u64 {
        self.rt().end
    }

    /// True once the clock has reached the episode's end.
    pub fn is_done(&self) -> bool {
        self.rt().now >= self.rt().end
    }

    /// Engine counters.
    pub fn counters(&self) -> Counters {
        self.rt().counters
    }

    /// Telemetry gathered so far.
    pub fn telemetry(&self) -> &Telemetry {
        &self.rt().telemetry
    }

    /// Takes the telemetry gathered so far, leaving empty buffers (bounded memory for long runs).
    pub fn take_telemetry(&mut self) -> Telemetry {
        std::mem::take(&mut self.rt_mut().telemetry)
    }

    /// Records one [`crate::telemetry::RequestRecord`] per external request from now on.
    pub fn record_requests(&mut self, on: bool) {
        self.rt_mut().record_requests = on;
    }

    /// Pending events.
    pub fn pending_events(&self) -> usize {
        self.rt().queue.len()
    }

    /// Slots in use / allocated in the request arenas (jobs, invocations, roots): for memory checks.
    pub fn arena_usage(&self) -> [(usize, usize); 3] {
        let rt = self.rt();
        [
            (rt.jobs.in_use(), rt.jobs.capacity()),
            (rt.invs.in_use(), rt.invs.capacity()),
            (rt.roots.in_use(), rt.roots.capacity()),
        ]
    }

    /// Advances the clock to `t` (ns): processes all events before `t` and the scrape windows
    /// that end at or before `t`. The clock ends at `u64::MAX` ns: no scrape window ends
    /// there (a run to `u64::MAX` stops after the last window that ends before it).
    pub fn run_until(&mut self, t: u64) {
        let topo = self.topo.clone();
        let interval = topo.scenario.scrape_interval.0;
        loop {
            let rt = self.rt_mut();
            let tick = rt.next_tick;
            rt.run_events_before(&topo, tick.min(t));
            // a tick that saturated at u64::MAX never comes
            if tick > t || tick == u64::MAX {
                rt.now = rt.now.max(t);
                break;
            }
            rt.now = tick;
            self.schedule.run(&mut self.world);
            let rt = self.rt_mut();
            rt.next_tick = rt.next_tick.saturating_add(interval);
            rt.tick_index += 1;
        }
    }

    /// Advances the clock by `dt` ns.
    pub fn run_for(&mut self, dt: u64) {
        let t = self.now().saturating_add(dt);
        self.run_until(t);
    }

    /// Runs to the end of the episode.
    pub fn run_to_end(&mut self) {
        let end = self.end();
        self.run_until(end);
    }

    // ---------------------------------------------------------------- lookups

    /// Service id by name.
    pub fn service_id(&self, name: &str) -> Result<ServiceId, ControlError> {
        self.topo
            .service_id(name)
            .ok_or_else(|| ControlError::UnknownService(name.into()))
    }

    /// Node id by name.
    pub fn node_id(&self, name: &str) -> Result<NodeId, ControlError> {
        self.topo
            .node_id(name)
            .ok_or_else(|| ControlError::UnknownNode(name.into()))
    }

    /// The live pods (not terminated) that `keep` accepts, in slot order, described without
    /// copying the others' names.
    fn live_pods_where(&self, keep: impl Fn(&crate::engine::PodRt) -> bool) -> Vec<PodInfo> {
        self.rt()
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| p.phase != Phase::Terminated && keep(p))
            .map(|(i, p)| PodInfo {
                id: i as u32,
                name: p.name.clone(),
                service: p.service,
                node: if p.node == NONE { None } else { Some(p.node) },
                phase: p.phase,
                ready: p.ready,
                restarts: p.restarts,
                config_version: p.version,
            })
            .collect()
    }

    /// Live pods (not terminated), in slot order.
    pub fn pods(&self) -> Vec<PodInfo> {
        self.live_pods_where(|_| true)
    }

    /// Live pods of one service.
    pub fn pods_of(&self, service: ServiceId) -> Vec<PodInfo> {
        self.live_pods_where(|p| p.service == service)
    }

    /// A live pod by name.
    pub fn pod_by_name(&self, name: &str) -> Option<PodInfo> {
        self.live_pods_where(|p| p.name == name).into_iter().next()
    }

    /// Whether a live pod has this name (no copies: for checks made at every scrape tick).
    ///
    /// ```
    /// let sc = sim_core::topologies::load("simple-micro").unwrap();
    /// let mut sim = sim_core::Simulation::new(&sc, 1).unwrap();
    /// let pod = sim.pods()[0].clone();
    /// assert!(sim.has_live_pod(&pod.name));
    /// sim.kill_pod(pod.id).unwrap();
    /// assert!(!sim.has_live_pod(&pod.name));
    /// ```
    pub fn has_live_pod(&self, name: &str) -> bool {
        self.rt()
            .pods
            .iter()
            .any(|p| p.phase != Phase::Terminated && p.name == name)
    }

    /// Resident memory of a live pod (bytes).
    pub fn pod_memory(&self, pod: PodId) -> Result<u64, ControlError> {
        self.check_pod(pod)?;
        Ok(self.rt().pod_memory(pod as usize))
    }

    /// The memory leak rate set on a pod ([`Simulation::set_pod_memory_leak`]), bytes/s.
    pub fn pod_leak_rate(&self, pod: PodId) -> Result<f64, ControlError> {
        self.check_pod(pod)?;
        Ok(self.rt().pods[pod as usize].leak_per_s)
    }

    /// Whether a node is up.
    pub fn node_up(&self, node: NodeId) -> Result<bool, ControlError> {
        self.check_node(node)?;
        Ok(self.rt().nodes[node as usize].up)
    }

    /// How many times [`Simulation::restart_node`] rebooted a node (0 at the start; a
    /// [`Simulation::kill_node`] / [`Simulation::restore_node`] pair is not a restart). Fault
    /// injectors compare it with the count when their fault began to tell that a node was
    /// rebooted since (a rebooted zombie node is cured).
    pub fn node_restarts(&self, node: NodeId) -> Result<u32, ControlError> {
        self.check_node(node)?;
        Ok(self.rt().nodes[node as usize].restarts)
    }

    /// The horizontal pod autoscaler in force for a service: the scenario's unless
    /// [`Simulation::set_autoscaler`] replaced or removed it.
    pub fn autoscaler(&self, service: ServiceId) -> Result<Option<AutoscalerSpec>, ControlError> {
        self.check_service(service)?;
        Ok(self.rt().svcs[service as usize].hpa.clone())
    }

    /// Desired replicas and current config version of a service.
    pub fn deployment(&self, service: ServiceId) -> Result<(u32, u32), ControlError> {
        self.check_service(service)?;
        let s = &self.rt().svcs[service as usize];
        Ok((s.desired, s.version))
    }

    /// The ingress rate limit of a service (None: unlimited).
    pub fn ingress_rate_limit(&self, service: ServiceId) -> Result<Option<f64>, ControlError> {
        self.check_service(service)?;
        Ok(self.rt().svcs[service as usize].ingress_limit)
    }

    fn check_pod(&self, pod: PodId) -> Result<(), ControlError> {
        match self.rt().pods.get(pod as usize) {
            Some(p) if p.phase != Phase::Terminated => Ok(()),
            _ => Err(ControlError::UnknownPod(pod)),
        }
    }

    fn check_service(&self, s: ServiceId) -> Result<(), ControlError> {
        if (s as usize) < self.topo.num_services() {
            Ok(())
        } else {
            Err(ControlError::UnknownService(s.to_string()))
        }
    }

    fn check_edge(&self, e: EdgeId) -> Result<(), ControlError> {
        if (e as usize) < self.topo.edges.len() {
            Ok(())
        } else {
            Err(ControlError::UnknownEdge(e))
        }
    }

    fn check_node(&self, n: NodeId) -> Result<(), ControlError> {
        if (n as usize) < self.topo.num_nodes() {
            Ok(())
        } else {
            Err(ControlError::UnknownNode(n.to_string()))
        }
    }

    // ---------------------------------------------------------------- control surface

    /// Deletes a pod (`kubectl delete pod`): its requests fail, the deployment creates a
    /// replacement that schedules and boots.
    pub fn kill_pod(&mut self, pod: PodId) -> Result<(), ControlError> {
        self.check_pod(pod)?;
        self.with_rt(|rt, topo| {
            let s = rt.pods[pod as usize].service;
            rt.terminate_pod(topo, pod, "deleted");
            rt.reconcile(topo, s);
        });
        Ok(())
    }

    /// Restarts a pod's container: its requests fail, it boots again (no back-off). A pod
    /// lost with its node cannot be restarted (its kubelet is unreachable): that is an
    /// error, and the pod is still evicted and replaced after the eviction timeout.
    pub fn restart_pod(&mut self, pod: PodId) -> Result<(), ControlError> {
        self.check_pod(pod)?;
        if self.rt().pods[pod as usize].phase == Phase::NodeLost {
            return Err(ControlError::InvalidValue {
                what: "pod",
                why: format!(
                    "{} is on a node that is down: it cannot restart, and is evicted after the \
                     eviction timeout (restart or restore the node instead)",
                    self.rt().pods[pod as usize].name
                ),
            });
        }
        self.with_rt(|rt, topo| rt.restart_container(topo, pod));
        Ok(())
    }

    /// Takes a node down: its pods are lost and, after the eviction timeout, replaced elsewhere.
    pub fn kill_node(&mut self, node: NodeId) -> Result<(), ControlError> {
        self.check_node(node)?;
        self.with_rt(|rt, topo| rt.node_down(topo, node));
        Ok(())
    }

    /// Brings a node back: lost pods still bound to it boot again; pending pods may schedule.
    pub fn restore_node(&mut self, node: NodeId) -> Result<(), ControlError> {
        self.check_node(node)?;
        self.with_rt(|rt, topo| rt.node_up(topo, node));
        Ok(())
    }

    /// Restarts every pod on a node (a node reboot that keeps it in the cluster); brings a
    /// down node back up. Counted in [`Simulation::node_restarts`].
    pub fn restart_node(&mut self, node: NodeId) -> Result<(), ControlError> {
        self.check_node(node)?;
        self.with_rt(|rt, topo| {
            let n = &mut rt.nodes[node as usize];
            n.restarts = n.restarts.saturating_add(1);
            rt.node_up(topo, node);
            let pods: Vec<u32> = (0..rt.pods.len() as u32)
                .filter(|&p| {
                    rt.pods[p as usize].node == node
                        && rt.pods[p as usize].phase != Phase::Terminated
                })
                .collect();
            for p in pods {
                rt.restart_container(topo, p);
            }
        });
        Ok(())
    }

    /// Sets a deployment's replicas (`kubectl scale`). New pods schedule and boot.
    pub fn scale(&mut self, service: ServiceId, replicas: u32) -> Result<(), ControlError> {
        self.check_service(service)?;
        if replicas > MAX_REPLICAS {
            return Err(ControlError::InvalidValue {
                what: "replicas",
                why: "at most 10000".into(),
            });
        }
        self.with_rt(|rt, topo| {
            rt.svcs[service as usize].desired = replicas;
            let name = topo.service(service).name.clone();
            rt.log(topo, NONE, Severity::Info, LogTemplate::Deployment, || {
                format!("deployment {name} scaled to {replicas} replicas")
            });
            rt.reconcile(topo, service);
        });
        Ok(())
    }

    /// Sets a pod's load-balancing weight (default 100; 0 takes it out of rotation).
    pub fn set_pod_weight(&mut self, pod: PodId, weight: u32) -> Result<(), ControlError> {
        self.check_pod(pod)?;
        let rt = self.rt_mut();
        rt.pods[pod as usize].weight = weight.min(10_000);
        rt.custom_weights = true;
        Ok(())
    }

    /// Sets a node's load-balancing weight, applied to every pod on it (default 100).
    pub fn set_node_weight(&mut self, node: NodeId, weight: u32) -> Result<(), ControlError> {
        self.check_node(node)?;
        let rt = self.rt_mut();
        rt.nodes[node as usize].weight = weight.min(10_000);
        rt.custom_weights = true;
        Ok(())
    }

    /// A pod's load-balancing weight (100 unless set with [`Simulation::set_pod_weight`]).
    pub fn pod_weight(&self, pod: PodId) -> Result<u32, ControlError> {
        self.check_pod(pod)?;
        Ok(self.rt().pods[pod as usize].weight)
    }

    /// A node's load-balancing weight (100 unless set with [`Simulation::set_node_weight`]).
    pub fn node_weight(&self, node: NodeId) -> Result<u32, ControlError> {
        self.check_node(node)?;
        Ok(self.rt().nodes[node as usize].weight)
    }

    /// Limits the requests per second admitted at an entry service (None removes the limit);
    /// the rest are answered 429 at once.
    pub fn set_ingress_rate_limit(
        &mut self,
        service: ServiceId,
        rps: Option<f64>,
    ) -> Result<(), ControlError> {
        self.check_service(service)?;
        if let Some(r) = rps
            && !(r.is_finite() && r >= 0.0)
        {
            return Err(ControlError::InvalidValue {
                what: "rps",
                why: format!("{r} is not a finite non-negative rate"),
            });
        }
        let now = self.now();
        let s = &mut self.rt_mut().svcs[service as usize];
        s.ingress_limit = rps;
        s.tokens = rps.unwrap_or(0.0).min(1.0);
        s.tokens_at = now;
        Ok(())
    }

    /// Replaces a service's horizontal pod autoscaler (`kubectl apply` of an HPA; None deletes
    /// it and leaves the replicas where they are). The spec is checked as the scenario's
    /// `autoscaler` is; an error names the field (`autoscaler.min_replicas`, ...).
    ///
    /// The next evaluation uses the new spec: it stays at its scheduled time, or comes sooner
    /// if the new period is shorter. A service that had no HPA starts a fresh CPU averaging
    /// window now and is first evaluated one period from now; like any new HPA, its first
    /// evaluation records the current replica count as a recommendation, so it scales down no
    /// sooner than one stabilisation window after that. A replacement keeps the
    /// recommendations seen so far (as Kubernetes does for an updated HPA): a scale-down goes
    /// to the highest recommendation of the new spec's `scale_down_stabilization` window; a
    /// deleted HPA forgets them. A raised `min_replicas` (or lowered `max_replicas`) takes
    /// effect at the next evaluation that has CPU metrics (a ready pod), without waiting for
    /// the stabilisation window.
    pub fn set_autoscaler(
        &mut self,
        service: ServiceId,
        spec: Option<AutoscalerSpec>,
    ) -> Result<(), ControlError> {
        self.check_service(service)?;
        if let Some(a) = &spec {
            crate::scenario::validate_autoscaler(a)
                .map_err(|(what, why)| ControlError::InvalidValue { what, why })?;
        }
        self.with_rt(|rt, topo| {
            let now = rt.now;
            let name = topo.service(service).name.clone();
            let s = &mut rt.svcs[service as usize];
            match &spec {
                None => {
                    s.hpa_next = u64::MAX;
                    s.hpa_recs.clear();
                }
                Some(a) => {
                    let next = now.saturating_add(a.period.0);
                    if s.hpa.is_none() {
                        s.hpa_next = next;
                        s.hpa_last = now;
                        s.hpa_recs.clear();
                        for p in &mut rt.pods {
                            if p.service == service {
                                p.hpa_cpu_ns = 0;
                            }
                        }
                    } else {
                        s.hpa_next = s.hpa_next.min(next);
                    }
                }
            }
            let s = &mut rt.svcs[service as usize];
            s.hpa = spec.clone();
            let msg = match &spec {
                None => format!("horizontal-pod-autoscaler for {name} deleted"),
                Some(a) => format!(
                    "horizontal-pod-autoscaler for {name} set: min {} max {} target cpu {:.0}%",
                    a.min_replicas,
                    a.max_replicas,
                    a.target_cpu * 100.0
                ),
            };
            rt.log(topo, NONE, Severity::Info, LogTemplate::Deployment, || msg);
        });
        Ok(())
    }

    /// Rolls config version `version` out to a deployment (0 = the service's base settings):
    /// every pod restarts with it (Recreate strategy).
    pub fn rollout(&mut self, service: ServiceId, version: u32) -> Result<(), ControlError> {
        self.check_service(service)?;
        let n = self.topo.service(service).config_versions.len() as u32;
        if version > n {
            return Err(ControlError::UnknownVersion {
                service: self.topo.service(service).name.clone(),
                version,
            });
        }
        self.with_rt(|rt, topo| rt.rollout(topo, service, version, true));
        Ok(())
    }

    /// Rolls a deployment back to the version before the current one (`kubectl rollout undo`).
    pub fn rollback(&mut self, service: ServiceId) -> Result<u32, ControlError> {
        self.check_service(service)?;
        let name = self.topo.service(service).name.clone();
        self.with_rt(|rt, topo| {
            let prev = rt.svcs[service as usize]
                .history
                .pop()
                .ok_or(ControlError::NothingToRollBack(name))?;
            rt.rollout(topo, service, prev, false);
            Ok(prev)
        })
    }

    // ---------------------------------------------------------------- fault surface

    /// Extra CPU load inside a pod (millicores, e.g. a stress process): competes with the
    /// pod's workers for its CPU limit and for the node.
    pub fn set_pod_cpu_stress(&mut self, pod: PodId, millicores: u32) -> Result<(), ControlError> {
        self.check_pod(pod)?;
        check_stress(millicores)?;
        let rt = self.rt_mut();
        rt.pods[pod as usize].stress_cpu = millicores;
        rt.refresh_pod_stress();
        Ok(())
    }

    /// Extra CPU load on a node outside any pod (millicores); replaces the previous value.
    pub fn set_node_cpu_stress(
        &mut self,
        node: NodeId,
        millicores: u32,
    ) -> Result<(), ControlError> {
        self.check_node(node)?;
        check_stress(millicores)?;
        self.rt_mut().nodes[node as usize].stress_cpu = millicores;
        Ok(())
    }

    /// Extra resident memory in a pod (bytes, e.g. a memory stressor). Crossing the limit
    /// OOM-kills the pod at the next window.
    pub fn set_pod_memory_pressure(&mut self, pod: PodId, bytes: u64) -> Result<(), ControlError> {
        self.check_pod(pod)?;
        if bytes > 1 << 50 {
            return Err(ControlError::InvalidValue {
                what: "memory pressure",
                why: format!("{bytes} bytes is above 1 PiB"),
            });
        }
        self.rt_mut().pods[pod as usize].mem_pressure = bytes;
        Ok(())
    }

    /// A memory leak: resident memory grows by `bytes_per_s` from now while the container
    /// lives (a restart frees it and the leak starts over).
    pub fn set_pod_memory_leak(
        &mut self,
        pod: PodId,
        bytes_per_s: f64,
    ) -> Result<(), ControlError> {
        self.check_pod(pod)?;
        if !(bytes_per_s.is_finite() && (0.0..1e15).contains(&bytes_per_s)) {
            return Err(ControlError::InvalidValue {
                what: "bytes_per_s",
                why: format!("{bytes_per_s}"),
            });
        }
        let now = self.now();
        let p = &mut self.rt_mut().pods[pod as usize];
        p.leak_per_s = bytes_per_s;
        p.leak_since = now;
        Ok(())
    }

    /// Disk latency and errors on a pod's volume.
    pub fn set_pod_io_fault(&mut self, pod: PodId, fault: IoFault) -> Result<(), ControlError> {
        self.check_pod(pod)?;
        check_duration("io delay", fault.delay)?;
        for (what, v) in [
            ("delay_fraction", fault.delay_fraction),
            ("error_fraction", fault.error_fraction),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ControlError::InvalidValue {
                    what,
                    why: format!("{v} not in [0, 1]"),
                });
            }
        }
        self.rt_mut().pods[pod as usize].io = fault;
        Ok(())
    }

    /// Network delay, jitter and loss on everything a pod sends and receives.
    pub fn set_pod_network(&mut self, pod: PodId, fault: NetFault) -> Result<(), ControlError> {
        self.check_pod(pod)?;
        check_net(&fault)?;
        let rt = self.rt_mut();
        rt.pods[pod as usize].net = fault;
        rt.count_net_faults();
        Ok(())
    }

    /// Network delay, jitter and loss on one edge (both directions of every call on it).
    pub fn set_edge_network(&mut self, edge: EdgeId, fault: NetFault) -> Result<(), ControlError> {
        self.check_edge(edge)?;
        check_net(&fault)?;
        let rt = self.rt_mut();
        rt.edges[edge as usize].net = fault;
        rt.count_net_faults();
        Ok(())
    }

    /// Overrides the connection pool size of an edge (None: the scenario's). A grown pool
    /// serves waiting calls at once; a shrunk one hands out no connection until fewer than
    /// the new size are in use.
    pub fn set_pool_size(&mut self, edge: EdgeId, size: Option<u32>) -> Result<(), ControlError> {
        self.check_edge(edge)?;
        if size == Some(0) {
            return Err(ControlError::InvalidValue {
                what: "pool size",
                why: "must be positive".into(),
            });
        }
        self.rt_mut().edges[edge as usize].pool_override = size;
        let topo = self.topo.clone();
        self.rt_mut().pool_resized(&topo, edge);
        Ok(())
    }

    /// The connection pool size an edge uses now (the scenario's unless overridden with
    /// [`Simulation::set_pool_size`]; None: unbounded).
    pub fn pool_size(&self, edge: EdgeId) -> Result<Option<u32>, ControlError> {
        self.check_edge(edge)?;
        Ok(self.rt().edges[edge as usize].pool_size(&self.topo.edges[edge as usize].spec))
    }

    /// Overrides the per-attempt timeout of an edge (None: the scenario's), as a config
    /// change would; calls already in flight keep the timeout they started with.
    pub fn set_edge_timeout(
        &mut self,
        edge: EdgeId,
        timeout: Option<SimDuration>,
    ) -> Result<(), ControlError> {
        self.check_edge(edge)?;
        if let Some(t) = timeout {
            check_duration("timeout", t.0)?;
            if t.0 == 0 {
                return Err(ControlError::InvalidValue {
                    what: "timeout",
                    why: "must be positive".into(),
                });
            }
        }
        self.rt_mut().edges[edge as usize].timeout_override = timeout.map(|t| t.0);
        Ok(())
    }

    /// Overrides the retry policy of an edge (None: the scenario's), e.g. to take retry
    /// pressure off a system in a retry storm. Applies to the next failed attempt.
    pub fn set_edge_retry(
        &mut self,
        edge: EdgeId,
        retry: Option<RetrySpec>,
    ) -> Result<(), ControlError> {
        self.check_edge(edge)?;
        if let Some(r) = &retry {
            crate::scenario::validate_retry(r)
                .map_err(|why| ControlError::InvalidValue { what: "retry", why })?;
        }
        self.rt_mut().edges[edge as usize].retry_override = retry;
        Ok(())
    }

    /// The timeout and retry policy an edge uses now (the scenario's unless overridden).
    pub fn edge_policy(&self, edge: EdgeId) -> Result<(SimDuration, RetrySpec), ControlError> {
        self.check_edge(edge)?;
        let spec = &self.topo.edges[edge as usize].spec;
        let e = &self.rt().edges[edge as usize];
        Ok((SimDuration(e.timeout(spec)), e.retry(spec).clone()))
    }

    /// Cuts the network between pod sets; returns an id for [`Simulation::remove_partition`].
    pub fn add_partition(&mut self, partition: Partition) -> Result<u32, ControlError> {
        for &p in partition
            .members
            .iter()
            .chain(partition.peers.iter().flatten())
        {
            self.check_pod(p)?;
        }
        let rt = self.rt_mut();
        let id = rt.next_partition;
        rt.next_partition += 1;
        rt.partitions.insert(id, partition);
        Ok(id)
    }

    /// Heals a partition (unknown ids are ignored).
    pub fn remove_partition(&mut self, id: u32) {
        self.rt_mut().partitions.remove(&id);
    }

    /// Emits a log line on behalf of a pod or the cluster (u32::MAX), e.g. for a fault injector.
    pub fn emit_log(
        &mut self,
        pod: PodId,
        severity: Severity,
        template: LogTemplate,
        message: String,
    ) {
        self.with_rt(|rt, topo| {
            let p = if (pod as usize) < rt.pods.len() {
                pod
            } else {
                NONE
            };
            rt.log(topo, p, severity, template, || message)
        });
    }

    // ---------------------------------------------------------------- fork / snapshot

    /// An independent copy of the whole simulation (model, requests in flight, event queue,
    /// RNG states, telemetry). Running both forward gives identical results.
    pub fn fork(&self) -> Simulation {
        Self::from_parts(self.topo.clone(), self.rt().clone())
    }

    /// Serialises the whole simulation (postcard, with a header and a checksum).
    pub fn snapshot(&self) -> Vec<u8> {
        crate::snapshot::encode(&self.topo.scenario, self.rt())
    }

    /// Rebuilds a simulation from [`Simulation::snapshot`] bytes. Truncated, altered or
    /// inconsistent bytes are an error, never a panic.
    pub fn restore(bytes: &[u8]) -> Result<Simulation, SnapshotError> {
        let (scenario, rt) = crate::snapshot::decode(bytes)?;
        let topo = Arc::new(Topology::compile(&scenario)?);
        crate::snapshot::validate(&topo, &rt).map_err(SnapshotError::Corrupt)?;
        Ok(Self::from_parts(topo, rt))
    }

    /// Schedules a scripted request (a replayed trace) to arrive at time `at` (ns; clamped to
    /// now). Its call tree is followed instead of the operations' plans; calls between services
    /// with no edge in the topology are skipped and counted ([`Simulation::script_calls_without_edge`]).
    pub fn inject_request(
        &mut self,
        at: u64,
        request: ScriptedRequest,
    ) -> Result<(), ControlError> {
        if request.workload as usize >= self.topo.scenario.workload.len() {
            return Err(ControlError::InvalidValue {
                what: "workload",
                why: format!("no workload {}", request.workload),
            });
        }
        if request.nodes.is_empty() {
            return Err(ControlError::InvalidValue {
                what: "nodes",
                why: "a scripted request needs a root call".into(),
            });
        }
        for (i, n) in request.nodes.iter().enumerate() {
            if n.op as usize >= self.topo.ops.len() {
                return Err(ControlError::InvalidValue {
                    what: "op",
                    why: format!("node {i}: no operation {}", n.op),
                });
            }
            if n.stages
                .iter()
                .flatten()
                .any(|&c| c as usize <= i || c as usize >= request.nodes.len())
            {
                return Err(ControlError::InvalidValue {
                    what: "stages",
                    why: format!("node {i}: children must have larger indices inside the script"),
                });
            }
        }
        let entry = self.topo.edges[request.workload as usize].to;
        if self.topo.ops[request.nodes[0].op as usize].service != entry {
            return Err(ControlError::InvalidValue {
                what: "nodes[0].op",
                why: "the root operation must belong to the workload's entry service".into(),
            });
        }
        self.rt_mut().inject(at, request);
        Ok(())
    }

    /// Scripted calls skipped because the topology had no edge between the two services.
    pub fn script_calls_without_edge(&self) -> u64 {
        self.rt().script_calls_without_edge
    }

    /// The last scrape, if any.
    pub fn last_scrape(&self) -> Option<&Scrape> {
        self.telemetry().last_scrape()
    }
}

fn check_net(f: &NetFault) -> Result<(), ControlError> {
    check_duration("network delay", f.delay)?;
    check_duration("network jitter", f.jitter)?;
    if !(0.0..=1.0).contains(&f.loss) {
        return Err(ControlError::InvalidValue {
            what: "loss",
            why: format!("{} not in [0, 1]", f.loss),
        });
    }
    Ok(())
}

impl Clone for Simulation {
    fn clone(&self) -> Self {
        self.fork()
    }
}

/// CPU stress is at most a million cores (keeps every load sum far from overflow).
fn check_stress(millicores: u32) -> Result<(), ControlError> {
    if millicores > MAX_STRESS_MILLICORES {
        return Err(ControlError::InvalidValue {
            what: "cpu stress",
            why: format!("{millicores} millicores is above {MAX_STRESS_MILLICORES}"),
        });
    }
    Ok(())
}

/// The largest CPU stress a pod or node accepts, in millicores (a million cores).
pub const MAX_STRESS_MILLICORES: u32 = 1 << 29;

/// The longest duration a control call accepts (a delay, a timeout): one day.
pub const MAX_CONTROL_DURATION: u64 = 86_400 * SECONDS;

fn check_duration(what: &'static str, ns: u64) -> Result<(), ControlError> {
    if ns > MAX_CONTROL_DURATION {
        return Err(ControlError::InvalidValue {
            what,
            why: format!("{} is longer than a day", SimDuration(ns)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Restores a snapshot of `sim` whose runtime `edit` changed first.
    fn forged(sim: &Simulation, edit: &dyn Fn(&mut Runtime)) -> Result<Simulation, SnapshotError> {
        let mut rt = sim.rt().clone();
        edit(&mut rt);
        Simulation::restore(&crate::snapshot::encode(sim.scenario(), &rt))
    }

    /// Every count the engine keeps of work in progress (busy workers, in-flight requests,
    /// outstanding calls, jobs on CPU and disk, queued requests, connections in use and
    /// waiting, live jobs, invocations and requests) comes back to zero once traffic stops and
    /// the work drains: through retries, timeouts, lost and delayed messages, a pool shrunk to
    /// one connection, a killed pod, a slow and failing disk, a partition, a node failure,
    /// fire-and-forget calls and replayed (scripted) requests.
    #[test]
    fn work_in_progress_accounting_drains_to_zero() {
        use crate::engine::ScriptNode;
        use crate::scenario::{ArrivalSpec, CallMode, CallSpec, RateSpec, StageSpec};
        let mut sc = crate::topologies::load("dime-8node").unwrap();
        // app also fires an audit write at the db for every other request, without waiting
        let app_spec = sc.services.iter_mut().find(|s| s.name == "app").unwrap();
        app_spec.operations[0].stages.push(StageSpec {
            calls: vec![CallSpec {
                service: "db".into(),
                operation: Some("query".into()),
                probability: 0.5,
                mode: CallMode::Async,
                optional: false,
            }],
        });
        // 40 s of traffic at twice the base rate, then none
        sc.workload[0].arrivals = ArrivalSpec::Open {
            rate: RateSpec::Step {
                before: 200.0,
                after: 0.0,
                at: SimDuration::from_secs(40),
            },
        };
        sc.duration = SimDuration::from_secs(200);
        let mut sim = Simulation::new(&sc, 5).unwrap();
        let (app, db) = (
            sim.service_id("app").unwrap(),
            sim.service_id("db").unwrap(),
        );
        let app_db = sim.topology().edge_id(app, db).unwrap();
        let pods = sim.pods_of(app);
        sim.run_until(10 * SECONDS);
        let lossy = NetFault {
            delay: 50 * crate::time::MILLIS,
            loss: 0.2,
            ..NetFault::default()
        };
        sim.set_pod_network(pods[0].id, lossy).unwrap();
        sim.set_pool_size(app_db, Some(1)).unwrap();
        sim.kill_pod(pods[1].id).unwrap();
        let db_pod = sim.pods_of(db)[0].id;
        let slow_disk = IoFault {
            delay: 300 * crate::time::MILLIS,
            delay_fraction: 0.5,
            error_fraction: 0.1,
        };
        sim.set_pod_io_fault(db_pod, slow_disk).unwrap();
        let cut = sim
            .add_partition(Partition {
                members: vec![pods[2].id],
                peers: None,
            })
            .unwrap();
        let node = pods[3].node.unwrap();
        // replayed requests as well: ingress -> app -> (db, waited for; db, fire-and-forget)
        let op = |svc: ServiceId, name: &str| sim.topology().op_id(svc, name).unwrap();
        let ingress = sim.service_id("ingress").unwrap();
        let script = ScriptedRequest {
            workload: 0,
            nodes: vec![
                ScriptNode {
                    op: op(ingress, "route"),
                    cpu_ns: 300_000,
                    sync: true,
                    stages: vec![vec![1]],
                },
                ScriptNode {
                    op: op(app, "handle"),
                    cpu_ns: 20_000_000,
                    sync: true,
                    stages: vec![vec![2, 3]],
                },
                ScriptNode {
                    op: op(db, "query"),
                    cpu_ns: 5_000_000,
                    sync: true,
                    stages: vec![],
                },
                ScriptNode {
                    op: op(db, "query"),
                    cpu_ns: 5_000_000,
                    sync: false,
                    stages: vec![],
                },
            ],
            source_trace: None,
        };
        for k in 0..500u64 {
            sim.inject_request(10 * SECONDS + k * 40 * crate::time::MILLIS, script.clone())
                .unwrap();
        }
        sim.run_until(20 * SECONDS);
        sim.kill_node(node).unwrap();
        sim.run_until(30 * SECONDS);
        sim.set_pod_network(pods[0].id, NetFault::default())
            .unwrap();
        sim.set_pool_size(app_db, None).unwrap();
        sim.set_pod_io_fault(db_pod, IoFault::default()).unwrap();
        sim.remove_partition(cut);
        sim.restore_node(node).unwrap();
        sim.run_until(200 * SECONDS);
        let c = sim.counters();
        assert!(
            c.retries > 0 && c.timeouts > 0 && c.arrivals > 7_000,
            "{c:?}"
        );
        // every request was answered, and the clients' windows saw each answer once
        assert_eq!(c.arrivals, c.responses, "{c:?}");
        let seen: u64 = sim
            .telemetry()
            .scrapes
            .iter()
            .flat_map(|s| &s.clients)
            .map(|m| m.completed as u64)
            .sum();
        assert_eq!(seen, c.responses);
        let rt = sim.rt();
        for pod in &rt.pods {
            let work = (
                pod.busy,
                pod.in_flight,
                pod.outstanding,
                pod.on_cpu,
                pod.queue.len(),
            );
            assert_eq!(work, (0, 0, 0, 0, 0), "{}", pod.name);
        }
        for (n, node) in rt.nodes.iter().enumerate() {
            assert_eq!((node.on_cpu, node.io_active), (0, 0), "node {n}");
        }
        for (e, edge) in rt.edges.iter().enumerate() {
            assert!(edge.timeouts.is_empty(), "edge {e}: {:?}", edge.timeouts);
        }
        for (key, pool) in &rt.pools {
            assert_eq!((pool.in_use, pool.waiters.len()), (0, 0), "pool {key:?}");
        }
        assert_eq!(
            (rt.jobs.in_use(), rt.invs.in_use(), rt.roots.in_use()),
            (0, 0, 0)
        );
    }

    /// Closed-loop users never vanish: whatever happens to their requests (lost, timed out,
    /// refused, reset by a crash, rate limited), each user comes back, so once the faults are
    /// gone the request rate returns to its level before them.
    #[test]
    fn closed_loop_users_survive_every_failure() {
        use crate::dist::DurationDist;
        use crate::scenario::ArrivalSpec;
        let mut sc = crate::topologies::load("dime-8node").unwrap();
        sc.workload[0].arrivals = ArrivalSpec::Closed {
            users: 40,
            think_time: DurationDist::exponential(SimDuration::from_millis(200)),
        };
        sc.workload[0].client.timeout = SimDuration::from_millis(400);
        sc.duration = SimDuration::from_secs(120);
        let mut sim = Simulation::new(&sc, 9).unwrap();
        let (ingress, app) = (
            sim.service_id("ingress").unwrap(),
            sim.service_id("app").unwrap(),
        );
        let pods = sim.pods_of(app);
        sim.run_until(30 * SECONDS);
        let before = sim.counters().arrivals;
        sim.set_pod_network(
            pods[0].id,
            NetFault {
                loss: 0.5,
                ..NetFault::default()
            },
        )
        .unwrap();
        sim.kill_pod(pods[1].id).unwrap();
        sim.set_ingress_rate_limit(ingress, Some(20.0)).unwrap();
        let node = pods[2].node.unwrap();
        sim.kill_node(node).unwrap();
        sim.run_until(60 * SECONDS);
        sim.set_pod_network(pods[0].id, NetFault::default())
            .unwrap();
        sim.set_ingress_rate_limit(ingress, None).unwrap();
        sim.restore_node(node).unwrap();
        sim.run_until(90 * SECONDS);
        let mid = sim.counters().arrivals;
        sim.run_until(120 * SECONDS);
        let (healthy, after) = (
            (before as f64) / 30.0,
            (sim.counters().arrivals - mid) as f64 / 30.0,
        );
        assert!(
            (after / healthy - 1.0).abs() < 0.1,
            "requests per second: {healthy:.1} before the faults, {after:.1} after them"
        );
    }

    /// Arena free lists from a snapshot are checked before anything allocates from them.
    #[test]
    fn forged_free_lists_are_snapshot_errors() {
        let sc = crate::topologies::load("simple-micro").unwrap();
        let mut sim = Simulation::new(&sc, 1).unwrap();
        sim.run_for(SECONDS);
        let forge = |edit: &dyn Fn(&mut Runtime)| forged(&sim, edit);
        assert!(forge(&|_| {}).is_ok());
        assert!(forge(&|rt| rt.injections.free.push(7)).is_err());
        assert!(forge(&|rt| rt.jobs.free.push(u32::MAX)).is_err());
        // a live slot on the free list
        assert!(!sim.rt().jobs.items.is_empty());
        assert!(
            forge(&|rt| {
                let j = rt.jobs.alloc(rt.jobs.items[0].clone());
                rt.jobs.free.push(j);
            })
            .is_err()
        );
    }

    /// Pod placement is checked on restore: a ready pod (or one running jobs) with no node, a
    /// service listing another's pod, an out-of-range caller service. Restore used to accept a
    /// ready pod without a node, and the next event indexed the node list with NONE.
    #[test]
    fn forged_pod_placement_is_a_snapshot_error() {
        let sc = crate::topologies::load("simple-micro").unwrap();
        let mut sim = Simulation::new(&sc, 1).unwrap();
        sim.run_for(2 * SECONDS);
        let forge = |edit: &dyn Fn(&mut Runtime)| forged(&sim, edit);
        assert!(forge(&|_| {}).is_ok());
        let ready = sim.rt().svcs[0].ready[0] as usize;
        let err = |r: Result<Simulation, SnapshotError>| r.err().map(|e| e.to_string());
        let e = err(forge(&|rt| rt.pods[ready].node = NONE)).unwrap_or_default();
        assert!(e.contains("without a node"), "{e}");
        let other = sim.rt().svcs[1].pods[0];
        let e = err(forge(&|rt| rt.svcs[0].pods.push(other))).unwrap_or_default();
        assert!(e.contains("another service"), "{e}");
        let e = err(forge(&|rt| rt.invs.items[0].caller_service = 7)).unwrap_or_default();
        assert!(e.contains("caller service"), "{e}");
    }

    /// The autoscaler's stabilisation window travels in snapshots and is checked on restore:
    /// recommendations in time order, strictly decreasing, not in the future, at most the
    /// replica bound.
    #[test]
    fn forged_autoscaler_windows_are_snapshot_errors() {
        use crate::scenario::AutoscalerSpec;
        let mut sc = crate::topologies::load("simple-micro").unwrap();
        sc.services[0].autoscaler = Some(AutoscalerSpec {
            min_replicas: 1,
            max_replicas: 5,
            target_cpu: 0.5,
            period: SimDuration::from_secs(15),
            scale_down_stabilization: SimDuration::from_secs(300),
        });
        let mut sim = Simulation::new(&sc, 1).unwrap();
        sim.run_for(31 * SECONDS);
        let recs = sim.rt().svcs[0].hpa_recs.clone();
        assert!(!recs.is_empty() && recs.iter().all(|&(t, _)| t <= sim.now()));
        let back = Simulation::restore(&sim.snapshot()).unwrap();
        assert_eq!(back.rt().svcs[0].hpa_recs, recs);
        let forge = |edit: &dyn Fn(&mut Runtime)| forged(&sim, edit);
        let now = sim.now();
        assert!(forge(&|rt| rt.svcs[0].hpa_recs = [(1, 9), (2, 3)].into()).is_ok());
        for bad in [
            vec![(1, 3), (2, 9)],
            vec![(2, 9), (1, 3)],
            vec![(1, 9), (now + 1, 3)],
            vec![(1, 10_001)],
        ] {
            assert!(
                forge(&|rt| rt.svcs[0].hpa_recs = bad.clone().into()).is_err(),
                "{bad:?}"
            );
        }
    }

    /// Network faults from a snapshot may each be as long as the snapshot bound (2^62 ns):
    /// an edge's and both pods' delays and jitters together pass `u64::MAX`, and the message
    /// is delivered at the end of the clock instead of overflowing.
    #[test]
    fn forged_huge_network_faults_do_not_overflow() {
        let sc = crate::topologies::load("simple-micro").unwrap();
        let mut sim = Simulation::new(&sc, 1).unwrap();
        sim.run_for(SECONDS);
        let huge = NetFault {
            delay: (1 << 62) - 1,
            jitter: (1 << 62) - 1,
            loss: 0.0,
        };
        let mut back = forged(&sim, &|rt| {
            for p in &mut rt.pods {
                p.net = huge;
            }
            for e in &mut rt.edges {
                e.net = huge;
            }
            rt.count_net_faults();
        })
        .unwrap();
        back.run_for(2 * SECONDS);
        assert!(back.counters().arrivals > sim.counters().arrivals);
    }
}
