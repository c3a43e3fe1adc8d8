//! Sync health a supervisor can see: the devices of their units, when each
//! last synced, what it still holds back, and which have gone silent.
//! `GET /v1/devices` answers it as JSON, `GET /supervisor/devices` as a
//! page (`page::devices`); both are routed in `dashboard`.
//!
//! Everything here works from a list of `DeviceHealth`, whatever fills it:
//! `device_health` is the one place that gathers it from the registry.

use crate::app::{lock, ApiError, AppState};
use crate::registry::{Registry, RegistryError, Role};
use crate::supervisors::Supervisor;
use guichet_core::ReplicaId;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use std::collections::HashMap;

const DAY_MS: u64 = 86_400_000;

/// What the server knows of one device's syncing.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceHealth {
    pub replica: ReplicaId,
    pub agent: String,
    pub role: Role,
    pub units: Vec<String>,
    pub revoked: bool,
    /// When it was enrolled: a device that never synced is silent from then.
    pub enrolled_ms: u64,
    pub last_sync_ms: Option<u64>,
    /// Operations written on the device and not yet on the server.
    pub pending_ops: u64,
    /// Operations the device set aside because they could not be applied.
    pub quarantined_ops: u64,
    pub last_error: Option<String>,
    pub app_version: Option<String>,
}

impl DeviceHealth {
    /// Silent: not revoked, and no successful sync (or, if none ever, no
    /// enrolment) for more than `days` days.
    pub fn silent(&self, days: u32, now_ms: u64) -> bool {
        let last = self.last_sync_ms.unwrap_or(self.enrolled_ms);
        !self.revoked && now_ms.saturating_sub(last) > u64::from(days) * DAY_MS
    }

    /// The device as `who` may see it: only its units in their scope. A
    /// device of no unit (the gateway serves them all) is for supervisors
    /// of every unit only.
    fn seen_by(&self, who: &Supervisor) -> Option<Vec<String>> {
        if who.units.is_none() {
            return Some(self.units.clone());
        }
        let units: Vec<String> = self
            .units
            .iter()
            .filter(|u| who.may_see(u))
            .cloned()
            .collect();
        (!units.is_empty()).then_some(units)
    }
}

/// The answer of `GET /v1/devices`, and what the page shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Devices {
    /// The `silent_device_days` setting.
    pub silent_after_days: u32,
    /// How many of `devices` are silent.
    pub silent: u64,
    pub devices: Vec<DeviceLine>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceLine {
    pub replica: ReplicaId,
    pub agent: String,
    pub role: Role,
    /// The device's units the supervisor follows.
    pub units: Vec<String>,
    pub revoked: bool,
    pub enrolled_ms: u64,
    pub last_sync_ms: Option<u64>,
    pub pending_ops: u64,
    pub quarantined_ops: u64,
    pub last_error: Option<String>,
    pub app_version: Option<String>,
    pub silent: bool,
}

/// The devices `who` may see, of `unit` if one is asked for (the caller
/// refuses a unit outside their scope), in registry order.
pub fn devices_for(
    who: &Supervisor,
    devices: &[DeviceHealth],
    unit: Option<&str>,
    silent_after_days: u32,
    now_ms: u64,
) -> Devices {
    let devices: Vec<DeviceLine> = devices
        .iter()
        .filter_map(|d| Some((d, d.seen_by(who)?)))
        .filter(|(_, units)| unit.is_none_or(|wanted| units.iter().any(|u| u == wanted)))
        .map(|(d, units)| DeviceLine {
            replica: d.replica,
            agent: d.agent.clone(),
            role: d.role,
            units,
            revoked: d.revoked,
            enrolled_ms: d.enrolled_ms,
            last_sync_ms: d.last_sync_ms,
            pending_ops: d.pending_ops,
            quarantined_ops: d.quarantined_ops,
            last_error: d.last_error.clone(),
            app_version: d.app_version.clone(),
            silent: d.silent(silent_after_days, now_ms),
        })
        .collect();
    Devices {
        silent_after_days,
        silent: devices.iter().filter(|d| d.silent).count() as u64,
        devices,
    }
}

/// How many devices of every unit are silent: the `devices_silent` gauge.
pub fn silent_count(devices: &[DeviceHealth], silent_after_days: u32, now_ms: u64) -> u64 {
    devices
        .iter()
        .filter(|d| d.silent(silent_after_days, now_ms))
        .count() as u64
}

/// Registers the `devices_silent` gauge (as `guichet_devices_silent`).
pub fn register_silent_gauge(registry: &mut prometheus_client::registry::Registry, gauge: Gauge) {
    registry.register(
        "devices_silent",
        "Devices, not revoked, with no successful sync for more than silent_device_days days",
        gauge,
    );
}

/// The gauge's value now, for `GET /metrics` to set before rendering.
pub fn silent_now(state: &AppState, now_ms: u64) -> Result<i64, ApiError> {
    let devices = device_health(state)?;
    Ok(silent_count(&devices, state.config.silent_device_days, now_ms) as i64)
}

/// Every enrolled device's health, from the registry. The registry does
/// not know yet what the devices report of themselves: those fields stay
/// empty (None, 0) until it does.
pub fn device_health(state: &AppState) -> Result<Vec<DeviceHealth>, ApiError> {
    let registry = lock(&state.registry)?;
    let enrolled = registry.enrolment_times()?;
    Ok(registry
        .devices()?
        .into_iter()
        .map(|d| DeviceHealth {
            // Unknown only if the row vanished between the two reads: then
            // it counts as enrolled long ago, so it shows rather than hides.
            enrolled_ms: enrolled.get(&d.replica).copied().unwrap_or(0),
            replica: d.replica,
            agent: d.agent,
            role: d.role,
            units: d.units,
            revoked: d.revoked,
            last_sync_ms: None,
            pending_ops: 0,
            quarantined_ops: 0,
            last_error: None,
            app_version: None,
        })
        .collect())
}

impl Registry {
    /// When each device was enrolled, by replica.
    fn enrolment_times(&self) -> Result<HashMap<ReplicaId, u64>, RegistryError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT replica, enrolled_at FROM devices")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, ReplicaId>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_000_000_000;

    fn device(replica: ReplicaId, units: &[&str], last_sync_days_ago: Option<u64>) -> DeviceHealth {
        DeviceHealth {
            replica,
            agent: format!("agent-{replica}"),
            role: if units.is_empty() {
                Role::Intake
            } else {
                Role::Tablet
            },
            units: units.iter().map(|u| u.to_string()).collect(),
            revoked: false,
            enrolled_ms: NOW - 100 * DAY_MS,
            last_sync_ms: last_sync_days_ago.map(|d| NOW - d * DAY_MS),
            pending_ops: replica as u64,
            quarantined_ops: 0,
            last_error: None,
            app_version: Some("1.2.0".into()),
        }
    }

    fn supervisor(units: Option<&[&str]>) -> Supervisor {
        Supervisor {
            name: "awa".into(),
            units: units.map(|u| u.iter().map(|u| u.to_string()).collect()),
        }
    }

    #[test]
    fn a_supervisor_sees_the_devices_of_their_units_and_which_are_silent() {
        let mut revoked = device(6, &["unit-a"], None);
        revoked.revoked = true;
        let devices = [
            device(2, &["unit-a"], Some(1)),
            device(3, &["unit-b"], Some(10)),
            device(4, &["unit-a", "unit-b"], None),
            device(5, &[], Some(0)),
            revoked,
        ];
        let a = devices_for(&supervisor(Some(&["unit-a"])), &devices, None, 3, NOW);
        let seen: Vec<(ReplicaId, Vec<String>, bool)> = a
            .devices
            .iter()
            .map(|d| (d.replica, d.units.clone(), d.silent))
            .collect();
        assert_eq!(
            seen,
            [
                (2, vec!["unit-a".to_string()], false),
                (4, vec!["unit-a".to_string()], true),
                (6, vec!["unit-a".to_string()], false),
            ],
            "unit B's devices and the gateway are left out, and so is unit B itself"
        );
        assert_eq!(a.silent, 1);
        let all = devices_for(&supervisor(None), &devices, None, 3, NOW);
        assert_eq!(all.devices.len(), 5);
        assert_eq!(all.silent, 2);
        let b_only = devices_for(&supervisor(None), &devices, Some("unit-b"), 3, NOW);
        assert_eq!(
            b_only.devices.iter().map(|d| d.replica).collect::<Vec<_>>(),
            [3, 4]
        );
        let nobody = devices_for(&supervisor(Some(&["unit-z"])), &devices, None, 3, NOW);
        assert!(nobody.devices.is_empty());
        // Exactly three days is not yet more than three.
        assert!(!device(7, &["unit-a"], Some(3)).silent(3, NOW));
        assert!(device(7, &["unit-a"], Some(3)).silent(3, NOW + 1));
        assert!(device(7, &["unit-a"], Some(3)).silent(2, NOW));
    }

    #[test]
    fn the_silent_gauge_counts_every_unit() {
        let devices = [
            device(2, &["unit-a"], Some(1)),
            device(3, &["unit-b"], Some(10)),
            device(4, &[], None),
        ];
        let mut registry = prometheus_client::registry::Registry::with_prefix("guichet");
        let gauge = Gauge::default();
        register_silent_gauge(&mut registry, gauge.clone());
        gauge.set(silent_count(&devices, 3, NOW) as i64);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("\nguichet_devices_silent 2\n"), "{text}");
    }
}
