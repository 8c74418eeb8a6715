//! The bytes of every JSON artifact (`plan.json`, `training_config.json`, `result.json`, the
//! manifest, ...), in one place.

/// The bytes of every JSON artifact: pretty-printed, keys in struct order, ending with a
/// newline.
pub fn artifact_json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}
