//! The model in the ECS world, and the per-window systems.
//!
//! `bevy_ecs` holds the model: one entity per node, service, edge and live pod, with the
//! components below, so research code can query the cluster the ECS way
//! (`world.query::<&PodEntity>()`). The per-scrape-window work runs as a `bevy_ecs`
//! [`Schedule`] of systems, in a fixed order: memory accounting (OOM kills), autoscaling,
//! the metric scrape, and the pod-entity mirror.
//!
//! The hot path (requests) does not go through the ECS: spawning an entity per request
//! would cost ~80 ns, and the request handlers need nothing but a few dense arrays. They
//! live in the [`EngineState`] resource.

use crate::engine::{NONE, Runtime};
use crate::model::{EdgeId, NodeId, PodId, ServiceId, Topology};
use crate::scenario::{Protocol, ServiceKind};
use crate::telemetry::Phase;
use bevy_ecs::prelude::*;
use bevy_ecs::schedule::Schedule;
use std::sync::Arc;

/// The engine's mutable state, as an ECS resource.
#[derive(Resource)]
pub struct EngineState(pub(crate) Runtime);

/// The compiled model, as an ECS resource.
#[derive(Resource, Clone)]
pub struct TopologyRes(pub Arc<Topology>);

/// The length of the scrape window that just ended (ns), as an ECS resource.
#[derive(Resource, Clone, Copy)]
pub struct Window(pub u64);

/// A node entity.
#[derive(Component, Clone, Debug, PartialEq)]
pub struct NodeEntity {
    /// Dense id.
    pub id: NodeId,
    /// Name.
    pub name: String,
    /// Zone.
    pub zone: String,
    /// Up (Ready) at the last window.
    pub up: bool,
}

/// A service (deployment) entity.
#[derive(Component, Clone, Debug, PartialEq)]
pub struct ServiceEntity {
    /// Dense id.
    pub id: ServiceId,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ServiceKind,
    /// Desired replicas at the last window.
    pub desired_replicas: u32,
    /// Config version at the last window.
    pub config_version: u32,
}

/// A dependency edge entity.
#[derive(Component, Clone, Debug, PartialEq)]
pub struct EdgeEntity {
    /// Dense id.
    pub id: EdgeId,
    /// Caller (None: external clients).
    pub from: Option<ServiceId>,
    /// Callee.
    pub to: ServiceId,
    /// Protocol.
    pub protocol: Protocol,
}

/// A live pod entity (mirrored from the engine at each window).
#[derive(Component, Clone, Debug, PartialEq)]
pub struct PodEntity {
    /// Pod slot.
    pub id: PodId,
    /// Name.
    pub name: String,
    /// Service.
    pub service: ServiceId,
    /// Node (u32::MAX: unscheduled).
    pub node: NodeId,
    /// Phase.
    pub phase: Phase,
    /// Restarts.
    pub restarts: u32,
}

/// Builds a world for a topology and runtime: model entities plus the resources.
pub(crate) fn build_world(topo: &Arc<Topology>, rt: Runtime) -> World {
    let mut world = World::new();
    for (i, n) in topo.scenario.nodes.iter().enumerate() {
        world.spawn(NodeEntity {
            id: i as u32,
            name: n.name.clone(),
            zone: n.zone.clone(),
            up: rt.nodes[i].up,
        });
    }
    for (i, s) in topo.scenario.services.iter().enumerate() {
        world.spawn(ServiceEntity {
            id: i as u32,
            name: s.name.clone(),
            kind: s.kind,
            desired_replicas: rt.svcs[i].desired,
            config_version: rt.svcs[i].version,
        });
    }
    for (i, e) in topo.edges.iter().enumerate() {
        world.spawn(EdgeEntity {
            id: i as u32,
            from: e.from,
            to: e.to,
            protocol: e.spec.protocol,
        });
    }
    world.insert_resource(TopologyRes(topo.clone()));
    world.insert_resource(Window(topo.scenario.scrape_interval.0));
    world.insert_resource(EngineState(rt));
    mirror(&mut world);
    world
}

/// The per-window schedule.
pub(crate) fn window_schedule() -> Schedule {
    let mut s = Schedule::default();
    s.add_systems(
        (
            memory_system,
            autoscale_system,
            scrape_system,
            mirror_system,
        )
            .chain(),
    );
    s
}

fn memory_system(mut st: ResMut<EngineState>, topo: Res<TopologyRes>) {
    let rt = &mut st.bypass_change_detection().0;
    rt.check_memory(&topo.0);
    rt.schedule_pending(&topo.0);
    rt.refresh_pod_stress();
}

fn autoscale_system(mut st: ResMut<EngineState>, topo: Res<TopologyRes>) {
    st.bypass_change_detection().0.autoscale(&topo.0);
}

fn scrape_system(mut st: ResMut<EngineState>, topo: Res<TopologyRes>, w: Res<Window>) {
    let rt = &mut st.bypass_change_detection().0;
    let scrape = rt.scrape(&topo.0, w.0);
    rt.telemetry
        .push_scrape(scrape, topo.0.scenario.telemetry.retain_scrapes);
}

fn mirror_system(
    mut commands: Commands,
    st: Res<EngineState>,
    mut pods: Query<(Entity, &mut PodEntity)>,
    mut nodes: Query<&mut NodeEntity>,
    mut services: Query<&mut ServiceEntity>,
) {
    let rt = &st.0;
    let mut seen = vec![false; rt.pods.len()];
    for (e, mut pe) in &mut pods {
        let p = pe.id as usize;
        let pod = rt.pods.get(p);
        match pod {
            Some(pod) if pod.phase != Phase::Terminated && pod.name == pe.name => {
                seen[p] = true;
                let node = if pod.node == NONE { u32::MAX } else { pod.node };
                // compare before writing: no name clone, and change detection only on change
                if pe.service != pod.service
                    || pe.node != node
                    || pe.phase != pod.phase
                    || pe.restarts != pod.restarts
                {
                    pe.service = pod.service;
                    pe.node = node;
                    pe.phase = pod.phase;
                    pe.restarts = pod.restarts;
                }
            }
            _ => commands.entity(e).despawn(),
        }
    }
    for (p, pod) in rt.pods.iter().enumerate() {
        if !seen[p] && pod.phase != Phase::Terminated {
            commands.spawn(pod_entity(p as u32, pod));
        }
    }
    for mut n in &mut nodes {
        let up = rt.nodes[n.id as usize].up;
        if n.up != up {
            n.up = up;
        }
    }
    for mut s in &mut services {
        let sv = &rt.svcs[s.id as usize];
        if s.desired_replicas != sv.desired || s.config_version != sv.version {
            s.desired_replicas = sv.desired;
            s.config_version = sv.version;
        }
    }
}

fn pod_entity(p: u32, pod: &crate::engine::PodRt) -> PodEntity {
    PodEntity {
        id: p,
        name: pod.name.clone(),
        service: pod.service,
        node: if pod.node == NONE { u32::MAX } else { pod.node },
        phase: pod.phase,
        restarts: pod.restarts,
    }
}

/// Runs the mirror system once outside the schedule (after building or restoring a world).
pub(crate) fn mirror(world: &mut World) {
    let mut s = Schedule::default();
    s.add_systems(mirror_system);
    s.run(world);
}
