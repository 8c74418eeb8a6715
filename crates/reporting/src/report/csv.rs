//! `metrics.csv`: a row per job with its outcome and every metric of the test, then the train
//! split (numbers as Rust prints them, empty where a job has none).

use super::model::Model;
use std::io::Write;

/// The whole of `metrics.csv`, written to `csv` a row at a time (100,000 jobs make a file of
/// 100 MB or more).
pub(super) fn metrics(m: &Model, csv: &mut dyn Write) -> std::io::Result<()> {
    let splits = ["test", "train"];
    write!(
        csv,
        "dose,view,gridsize,status,epochs_completed,final_loss,bundle_sha256"
    )?;
    for split in splits {
        for name in m.metric_names(split) {
            write!(csv, ",{split}.{name}")?;
        }
    }
    writeln!(csv)?;
    for j in &m.jobs {
        let trained = j.trained();
        write!(
            csv,
            "{},{},{},{},{},{},{}",
            j.id.dose,
            j.id.view,
            j.id.gridsize,
            j.result.status(),
            trained.map_or(String::new(), |t| t.epochs_completed.to_string()),
            trained
                .and_then(|t| t.final_loss)
                .map_or(String::new(), |v| v.to_string()),
            trained.map_or("", |t| t.bundle_sha256.as_str())
        )?;
        for split in splits {
            for name in m.metric_names(split) {
                let v = j
                    .metric(split, name)
                    .map_or(String::new(), |v| v.to_string());
                write!(csv, ",{v}")?;
            }
        }
        writeln!(csv)?;
    }
    Ok(())
}
