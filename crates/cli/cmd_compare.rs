//! `dose-overlap compare`: the comparison phase over artifact roots that already exist (runs
//! made apart, on a cluster, by hand), refused when their Phase C/D data differ.

use crate::output::outln;
use anyhow::Context;
use reporting::compare::MethodRoot;
use std::path::PathBuf;

/// Arguments of `dose-overlap compare`.
#[derive(clap::Args)]
pub struct Args {
    /// Artifact roots of `train` runs, as `ROOT` (named from its manifest: `native:rpie`,
    /// `tensorflow`, ...) or `NAME=ROOT`.
    #[arg(required = true, value_name = "ROOT")]
    roots: Vec<String>,
    /// The comparison folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    map: crate::map_args::MapArgs,
}

/// `compare`'s settings, resolved from [`Args`] once (or built by `study` and `report`).
pub struct Options {
    /// The methods, each named, with its artifact root.
    pub methods: Vec<MethodRoot>,
    /// The comparison folder.
    pub out: PathBuf,
    /// How the dose x overlap maps are drawn.
    pub map: reporting::map::MapSettings,
}

impl Args {
    /// Names each root: `NAME=ROOT` as given, else from its manifest (which must read).
    pub fn resolve(self) -> anyhow::Result<Options> {
        let mut methods = Vec::new();
        for given in &self.roots {
            let (name, root) = match given.split_once('=') {
                Some((n, r)) if !n.is_empty() && !n.contains('/') => {
                    (Some(n.to_string()), PathBuf::from(r))
                }
                _ => (None, PathBuf::from(given)),
            };
            // The manifest must read whether or not the root is named.
            let read = reporting::compare::root_method_name(&root)
                .with_context(|| format!("reading the artifact root {}", root.display()))?;
            let name = name.unwrap_or(read);
            methods.push(MethodRoot { name, root });
        }
        Ok(Options {
            methods,
            out: self.out,
            map: self.map.settings(),
        })
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<u8> {
    execute(&args.resolve()?)
}

/// Writes the comparison of the methods into the comparison folder and lists what it wrote.
pub fn execute(options: &Options) -> anyhow::Result<u8> {
    let (methods, out) = (&options.methods, &options.out);
    let comparison = reporting::compare::compare_with(methods, out, &options.map)
        .with_context(|| format!("comparing into {}", out.display()))?;
    for (name, _) in comparison.files.iter().take(3) {
        outln!("wrote {}", out.join(name).display());
    }
    outln!(
        "{} method(s), {} job(s) in every one; {} plot(s), {} picture(s)",
        methods.len(),
        comparison.matched_jobs,
        comparison.files.len().saturating_sub(3),
        comparison.pictures.len()
    );
    Ok(crate::exit::OK)
}
