//! What each SLURM job asks for (`--partition`, `--time-limit`, `--mem`, `--gres`,
//! `--cpus-per-task`): from the command line, where `study` also takes `METHOD=VALUE` for one
//! method (`--gres tensorflow=gpu:1`), and from a study file's `[slurm]` table (keys for every
//! job) and `[slurm.<method>]` tables (one method's training array). A method's array gets,
//! from weakest to strongest: `[slurm]`, `[slurm.<backend>]` (`native` for every native
//! method), `[slurm.<method>]` (`"native:ml"` or `native-ml`), the plain flags, the flags
//! with its name. The study's own jobs (Phase C, Phase D, plan, finish) get `[slurm]` and the
//! plain flags, never a `gres` (none of them uses a GPU).

use crate::methods::{Method, parse_method};
use runner::slurm::Resources;
use std::collections::BTreeMap;

/// A resource flag's value: for every method, or (`METHOD=VALUE`, `study` only) for one.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceArg {
    /// The method named before `=`, if any.
    pub method: Option<String>,
    /// The value.
    pub value: String,
}

/// `[METHOD=]VALUE` (values never hold `=`; method names never do either).
pub fn parse_resource(text: &str) -> Result<ResourceArg, String> {
    match text.split_once('=') {
        Some((method, value)) => {
            parse_method(method)?;
            Ok(ResourceArg {
                method: Some(method.to_string()),
                value: value.to_string(),
            })
        }
        None => Ok(ResourceArg {
            method: None,
            value: text.to_string(),
        }),
    }
}

/// One kind of resource: its study-file key and its flag.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Key {
    Partition,
    Time,
    Mem,
    Gres,
    Cpus,
}

impl Key {
    const ALL: [Key; 5] = [Key::Partition, Key::Time, Key::Mem, Key::Gres, Key::Cpus];

    fn file_key(self) -> &'static str {
        match self {
            Key::Partition => "partition",
            Key::Time => "time",
            Key::Mem => "mem",
            Key::Gres => "gres",
            Key::Cpus => "cpus_per_task",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Key::Partition => "--partition",
            Key::Time => "--time-limit",
            Key::Mem => "--mem",
            Key::Gres => "--gres",
            Key::Cpus => "--cpus-per-task",
        }
    }

    /// Checks a value before anything is submitted (a bad one would otherwise fail inside a
    /// SLURM job, long after the command returned) and stores it.
    fn set(self, resources: &mut Resources, value: &str) -> Result<(), String> {
        let ok_chars = |extra: &str| {
            !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        };
        let valid = match self {
            Key::Partition => ok_chars("_.,-"),
            Key::Time => is_time(value),
            Key::Mem => {
                let digits = value.trim_end_matches(['K', 'M', 'G', 'T']);
                !digits.is_empty()
                    && digits.len() + 1 >= value.len()
                    && digits.chars().all(|c| c.is_ascii_digit())
            }
            Key::Gres => ok_chars("_:.,-/"),
            Key::Cpus => value.parse::<u32>().is_ok_and(|n| n > 0),
        };
        if !valid {
            let expected = match self {
                Key::Partition => "a partition name",
                Key::Time => "a SLURM time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
                Key::Mem => "a size: a number with an optional K, M, G or T (16G, 4000M)",
                Key::Gres => "a SLURM gres such as gpu:1 or gpu:a100:2",
                Key::Cpus => "a positive number of CPUs",
            };
            return Err(format!("`{value}` is not {expected}"));
        }
        let value = value.to_string();
        match self {
            Key::Partition => resources.partition = Some(value),
            Key::Time => resources.time_limit = Some(value),
            Key::Mem => resources.mem = Some(value),
            Key::Gres => resources.gres = Some(value),
            Key::Cpus => resources.cpus_per_task = value.parse().ok(),
        }
        Ok(())
    }
}

/// SLURM's time formats (`30`, `30:00`, `1:00:00`, `2-0`, `2-12:00`, `2-12:00:00`).
fn is_time(text: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.len() <= 6 && s.chars().all(|c| c.is_ascii_digit());
    let (days, rest) = match text.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, text),
    };
    if days.is_some_and(|d| !number(d)) {
        return false;
    }
    let parts: Vec<&str> = rest.split(':').collect();
    parts.iter().all(|p| number(p)) && (1..=3).contains(&parts.len())
}

/// `top`'s values over `base`'s.
fn overlay(base: &mut Resources, top: &Resources) {
    let pick = |b: &mut Option<String>, t: &Option<String>| {
        if t.is_some() {
            b.clone_from(t);
        }
    };
    pick(&mut base.partition, &top.partition);
    pick(&mut base.time_limit, &top.time_limit);
    pick(&mut base.mem, &top.mem);
    pick(&mut base.gres, &top.gres);
    if top.cpus_per_task.is_some() {
        base.cpus_per_task = top.cpus_per_task;
    }
}

/// The resource flags of a command line.
#[derive(Clone, Copy, Debug)]
pub struct ResourceFlags<'a> {
    /// `--partition`.
    pub partition: &'a [ResourceArg],
    /// `--time-limit`.
    pub time_limit: &'a [ResourceArg],
    /// `--mem`.
    pub mem: &'a [ResourceArg],
    /// `--gres`.
    pub gres: &'a [ResourceArg],
    /// `--cpus-per-task`.
    pub cpus_per_task: &'a [ResourceArg],
}

impl ResourceFlags<'_> {
    fn each(&self) -> impl Iterator<Item = (Key, &ResourceArg)> {
        [
            (Key::Partition, self.partition),
            (Key::Time, self.time_limit),
            (Key::Mem, self.mem),
            (Key::Gres, self.gres),
            (Key::Cpus, self.cpus_per_task),
        ]
        .into_iter()
        .flat_map(|(key, args)| args.iter().map(move |a| (key, a)))
    }

    /// The first flag given, for "is an option of --executor slurm".
    pub fn first_flag(&self) -> Option<&'static str> {
        self.each().next().map(|(key, _)| key.flag())
    }

    /// `train`'s resources: one method, so `METHOD=` is refused; the last value of a flag
    /// given twice counts.
    pub fn for_train(&self) -> anyhow::Result<Resources> {
        let mut resources = Resources::default();
        for (key, arg) in self.each() {
            if let Some(method) = &arg.method {
                anyhow::bail!(
                    "{} {method}={}: `METHOD=` chooses a method of `study`; `train` runs one, \
                     give {} {}",
                    key.flag(),
                    arg.value,
                    key.flag(),
                    arg.value
                );
            }
            key.set(&mut resources, &arg.value)
                .map_err(|e| anyhow::anyhow!("{} {e}", key.flag()))?;
        }
        Ok(resources)
    }
}

/// Every layer of a study's resources, checked; [`StudyResources::for_method`] and
/// [`StudyResources::for_stages`] resolve them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StudyResources {
    file_default: Resources,
    /// By the table's key: a backend (`native`), a method name or its slug.
    file_methods: BTreeMap<String, Resources>,
    flags_default: Resources,
    /// By method name as given (`native`: every native method).
    flag_methods: BTreeMap<String, Resources>,
}

impl StudyResources {
    /// Reads the study file's `[slurm]` table (`table`) and the flags, for a study that runs
    /// `methods`: a flag naming a method the study does not run is an error (a typo would
    /// otherwise be silently ignored).
    pub fn new(
        table: Option<&serde_json::Value>,
        flags: &ResourceFlags<'_>,
        methods: &[Method],
    ) -> anyhow::Result<StudyResources> {
        let mut out = StudyResources::default();
        if let Some(table) = table {
            let serde_json::Value::Object(entries) = table else {
                anyhow::bail!("`slurm` in the study file must be a table");
            };
            for (name, value) in entries {
                if let Some(key) = Key::ALL.iter().find(|k| k.file_key() == name) {
                    set_from_file(*key, &mut out.file_default, value, "[slurm]")?;
                    continue;
                }
                let serde_json::Value::Object(method_table) = value else {
                    anyhow::bail!(
                        "[slurm] in the study file: unknown key `{name}` (keys: {}; or a \
                         [slurm.<method>] table)",
                        key_names()
                    );
                };
                if file_key_method(name).is_none() {
                    anyhow::bail!(
                        "[slurm.{name}] in the study file names no method: use native, \
                         native:<algorithm> (quoted, or native-<algorithm>), tensorflow or pytorch"
                    );
                }
                let mut resources = Resources::default();
                let at = format!("[slurm.{name}]");
                for (key_name, value) in method_table {
                    let Some(key) = Key::ALL.iter().find(|k| k.file_key() == key_name) else {
                        anyhow::bail!(
                            "{at} in the study file: unknown key `{key_name}` (keys: {})",
                            key_names()
                        );
                    };
                    set_from_file(*key, &mut resources, value, &at)?;
                }
                out.file_methods.insert(name.clone(), resources);
            }
        }
        for (key, arg) in flags.each() {
            let target = match &arg.method {
                None => &mut out.flags_default,
                Some(name) => {
                    let method = parse_method(name).map_err(anyhow::Error::msg)?;
                    if !methods.iter().any(|m| same_method(m, &method)) {
                        anyhow::bail!(
                            "{} {name}={}: this study does not run `{name}` (its methods: {})",
                            key.flag(),
                            arg.value,
                            methods
                                .iter()
                                .map(Method::name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                    // By the name as given: plain `native` is every native method's.
                    out.flag_methods.entry(method.name()).or_default()
                }
            };
            key.set(target, &arg.value)
                .map_err(|e| anyhow::anyhow!("{} {e}", key.flag()))?;
        }
        Ok(out)
    }

    /// What `method`'s training array asks for.
    pub fn for_method(&self, method: &Method) -> Resources {
        let name = method.name();
        let backend = name.split(':').next().unwrap_or(&name).to_string();
        let slug = reporting::compare::slug(&name);
        let mut resources = self.file_default.clone();
        // `[slurm.native]` for every native method, then the method's own table.
        if backend != name
            && let Some(layer) = self.file_methods.get(&backend)
        {
            overlay(&mut resources, layer);
        }
        for key in [&name, &slug] {
            if let Some(layer) = self.file_methods.get(key.as_str()) {
                overlay(&mut resources, layer);
            }
        }
        overlay(&mut resources, &self.flags_default);
        if backend != name
            && let Some(layer) = self.flag_methods.get(&backend)
        {
            overlay(&mut resources, layer);
        }
        if let Some(layer) = self.flag_methods.get(&name) {
            overlay(&mut resources, layer);
        }
        resources
    }

    /// What the study's own jobs (Phase C, Phase D, plan, finish) ask for.
    pub fn for_stages(&self) -> Resources {
        let mut resources = self.file_default.clone();
        overlay(&mut resources, &self.flags_default);
        resources.gres = None;
        resources
    }
}

/// The same method, plain `native` standing for the study's algorithm on either side.
fn same_method(run: &Method, named: &Method) -> bool {
    run == named || (run.backend == named.backend && named.algorithm.is_none())
}

/// The method a `[slurm.<key>]` table names: a method name, or its slug (`native-ml`).
fn file_key_method(key: &str) -> Option<Method> {
    parse_method(key)
        .ok()
        .or_else(|| parse_method(&key.replacen('-', ":", 1)).ok())
}

fn key_names() -> String {
    Key::ALL
        .iter()
        .map(|k| k.file_key())
        .collect::<Vec<_>>()
        .join(", ")
}

fn set_from_file(
    key: Key,
    resources: &mut Resources,
    value: &serde_json::Value,
    at: &str,
) -> anyhow::Result<()> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if matches!(key, Key::Cpus | Key::Time) => n.to_string(),
        _ => anyhow::bail!(
            "{at} in the study file: `{}` must be a string",
            key.file_key()
        ),
    };
    key.set(resources, &text)
        .map_err(|e| anyhow::anyhow!("{at} in the study file: `{}`: {e}", key.file_key()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::parse_methods;

    fn args(list: &[&str]) -> Vec<ResourceArg> {
        list.iter().map(|s| parse_resource(s).unwrap()).collect()
    }

    /// `(table, gres flags, mem flags, time flags)` -> each method's and the stages'
    /// resources as `partition/time/mem/gres/cpus`.
    fn check(table: &str, gres: &[&str], mem: &[&str], time: &[&str], expected: &[&str]) {
        let table: Option<serde_json::Value> =
            (!table.is_empty()).then(|| serde_json::from_str(table).expect("test table is JSON"));
        let methods = parse_methods("native:ml,native:epie,tensorflow").unwrap().0;
        let (gres, mem, time) = (args(gres), args(mem), args(time));
        let flags = ResourceFlags {
            partition: &[],
            time_limit: &time,
            mem: &mem,
            gres: &gres,
            cpus_per_task: &[],
        };
        let resources = StudyResources::new(table.as_ref(), &flags, &methods).unwrap();
        let show = |r: &Resources| {
            [
                r.partition.as_deref(),
                r.time_limit.as_deref(),
                r.mem.as_deref(),
                r.gres.as_deref(),
            ]
            .map(|v| v.unwrap_or("-"))
            .join("/")
                + &format!("/{}", r.cpus_per_task.map_or("-".into(), |c| c.to_string()))
        };
        let mut found: Vec<String> = methods
            .iter()
            .map(|m| format!("{}: {}", m.name(), show(&resources.for_method(m))))
            .collect();
        found.push(format!("stages: {}", show(&resources.for_stages())));
        assert_eq!(found, expected);
    }

    #[test]
    fn layers_resolve_from_weakest_to_strongest() {
        check(
            "",
            &[],
            &[],
            &[],
            &[
                "native:ml: -/-/-/-/-",
                "native:epie: -/-/-/-/-",
                "tensorflow: -/-/-/-/-",
                "stages: -/-/-/-/-",
            ],
        );
        check(
            r#"{"partition": "cpu", "time": "30", "gres": "gpu:1",
                "native": {"mem": "4G"}, "native-ml": {"mem": "8G", "cpus_per_task": 4},
                "tensorflow": {"partition": "gpu", "time": "4:00:00", "gres": "gpu:a100:1"}}"#,
            &[],
            &["tensorflow=64G"],
            &["1:00:00"],
            &[
                "native:ml: cpu/1:00:00/8G/gpu:1/4",
                "native:epie: cpu/1:00:00/4G/gpu:1/-",
                "tensorflow: gpu/1:00:00/64G/gpu:a100:1/-",
                "stages: cpu/1:00:00/-/-/-",
            ],
        );
        check(
            "",
            &["gpu:1", "native:ml=gpu:0"],
            &["2G", "native=3G"],
            &[],
            &[
                "native:ml: -/-/3G/gpu:0/-",
                "native:epie: -/-/3G/gpu:1/-",
                "tensorflow: -/-/2G/gpu:1/-",
                "stages: -/-/2G/-/-",
            ],
        );
    }

    #[test]
    fn bad_values_and_names_are_refused() {
        let methods = parse_methods("native:ml").unwrap().0;
        let refuse = |table: &str, gres: &[&str], expected: &str| {
            let table: Option<serde_json::Value> =
                (!table.is_empty()).then(|| serde_json::from_str(table).unwrap());
            let gres = args(gres);
            let flags = ResourceFlags {
                partition: &[],
                time_limit: &[],
                mem: &[],
                gres: &gres,
                cpus_per_task: &[],
            };
            let err = StudyResources::new(table.as_ref(), &flags, &methods).unwrap_err();
            assert_eq!(err.to_string(), expected);
        };
        refuse(
            "",
            &["tensorflow=gpu:1"],
            "--gres tensorflow=gpu:1: this study does not run `tensorflow` (its methods: native:ml)",
        );
        refuse(
            "",
            &["gpu 1"],
            "--gres `gpu 1` is not a SLURM gres such as gpu:1 or gpu:a100:2",
        );
        refuse(
            r#"{"tensorflw": {"gres": "gpu:1"}}"#,
            &[],
            "[slurm.tensorflw] in the study file names no method: use native, native:<algorithm> \
             (quoted, or native-<algorithm>), tensorflow or pytorch",
        );
        refuse(
            r#"{"native": {"memory": "4G"}}"#,
            &[],
            "[slurm.native] in the study file: unknown key `memory` (keys: partition, time, mem, \
             gres, cpus_per_task)",
        );
        refuse(
            r#"{"time": "2 hours"}"#,
            &[],
            "[slurm] in the study file: `time`: `2 hours` is not a SLURM time: minutes, MM:SS, \
             HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
        );
        assert!(parse_resource("native:sgd=gpu:1").is_err());
        for good in ["30", "30:00", "1:00:00", "2-0", "2-12:00", "2-12:00:00"] {
            assert!(is_time(good), "{good}");
        }
        for bad in ["", "1:2:3:4", "a", "-1", "1-", "1h"] {
            assert!(!is_time(bad), "{bad}");
        }
    }
}
