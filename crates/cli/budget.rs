//! Refusing a study before any work when its estimated memory exceeds what the machine has
//! (`MemAvailable`, and the cgroup's limit when there is one) or `--max-memory`.

use std::path::Path;

use study_design::{SceneSize, Study, human_bytes};

/// Parses `--max-memory`: bytes, or a number with a unit (`512M`, `8G`, `1.5GB`, `2GiB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size: give bytes or e.g. 512M, 8G"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}': use K, M, G or T"
            ));
        }
    };
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{text}' is not a usable memory size"));
    }
    Ok(bytes as u64)
}

/// Memory this process may still use: `MemAvailable`, lowered to the cgroup v2 limit's
/// headroom when one is set. `None` where neither can be read (then only `--max-memory`
/// bounds the study).
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let available = meminfo.as_deref().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let cgroup = match (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        (Some(max), Some(current)) => Some(max.saturating_sub(current)),
        _ => None,
    };
    match (available, cgroup) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

/// The scene a base NPZ gives (object shape, positions when it has coordinates), from its
/// headers only; nothing when it cannot be opened (generate then says why).
fn base_scene(base: Option<&Path>) -> SceneSize {
    let Some(reader) = base.and_then(|p| npz_contract::NpzReader::open(p).ok()) else {
        return SceneSize::default();
    };
    let object = reader
        .member("objectGuess")
        .filter(|m| m.shape.len() == 2)
        .map(|m| (m.shape[0], m.shape[1]));
    let positions = reader
        .member("xcoords")
        .filter(|m| m.shape.len() == 1 && reader.member("ycoords").is_some())
        .map(|m| m.shape[0]);
    SceneSize { positions, object }
}

/// Refuses (an error: exit 2) when Phase C of `study` for `doses` doses would need more memory
/// than `max_memory` or the machine has, naming the values to change.
pub fn check(
    study: &Study,
    doses: Option<usize>,
    base: Option<&Path>,
    max_memory: Option<u64>,
) -> anyhow::Result<()> {
    let scene = base_scene(base.or(study.simulation.base_npz.as_deref()));
    let estimate = study.estimate(doses, scene);
    let (limit, source) = match (max_memory, available_memory()) {
        (Some(m), _) => (u128::from(m), "--max-memory"),
        (None, Some(a)) => (u128::from(a), "the memory available on this machine"),
        (None, None) => return Ok(()),
    };
    if estimate.memory <= limit {
        return Ok(());
    }
    let sim = &study.simulation;
    let n = study.design.patch_size_pixels;
    let positions = scene.positions.unwrap_or(sim.n_positions);
    let what = if estimate.memory_per_positions >= estimate.memory_object {
        format!(
            "lower simulation.n_positions (now {positions}) or patch_size_pixels (now {n}), or \
             generate fewer doses at once (--dose; now {})",
            doses.unwrap_or(study.design.dose_list.len())
        )
    } else if scene.object.is_some() {
        "use a base NPZ with a smaller objectGuess".to_string()
    } else {
        format!("lower simulation.object_size (now {})", sim.object_size)
    };
    anyhow::bail!(
        "this study needs about {} of memory for Phase C, more than {source} ({}): {what}; \
         or raise the limit with --max-memory",
        human_bytes(estimate.memory),
        human_bytes(limit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1.5 GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("1e400G").is_err());
    }
}
