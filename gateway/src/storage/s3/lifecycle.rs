//! The bucket lifecycle rule upgate relies on: multipart uploads left unfinished are
//! aborted. Read from the bucket's configuration, not guessed from its text: the rule must
//! be enabled and cover every key.

use serde::de::IgnoredAny;
use serde::Deserialize;

/// What upgate installs on a bucket that has no lifecycle configuration.
pub const RULE: &str = "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
<Rule><ID>upgate-abort-incomplete-uploads</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter>\
<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>\
</Rule></LifecycleConfiguration>";

#[derive(Deserialize)]
struct Configuration {
    #[serde(rename = "Rule", default)]
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    #[serde(rename = "Status")]
    status: String,
    /// The older spelling of a rule's scope, beside `Filter`.
    #[serde(rename = "Prefix", default)]
    prefix: Option<String>,
    #[serde(rename = "Filter", default)]
    filter: Option<Filter>,
    #[serde(rename = "AbortIncompleteMultipartUpload", default)]
    abort: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Filter {
    #[serde(rename = "Prefix", default)]
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tag: Option<IgnoredAny>,
    #[serde(rename = "And", default)]
    and: Option<IgnoredAny>,
    #[serde(rename = "ObjectSizeGreaterThan", default)]
    larger: Option<IgnoredAny>,
    #[serde(rename = "ObjectSizeLessThan", default)]
    smaller: Option<IgnoredAny>,
}

impl Rule {
    fn covers_every_key(&self) -> bool {
        let empty = |p: &Option<String>| p.as_deref().is_none_or(str::is_empty);
        empty(&self.prefix)
            && self.filter.as_ref().is_none_or(|f| {
                empty(&f.prefix)
                    && f.tag.is_none()
                    && f.and.is_none()
                    && f.larger.is_none()
                    && f.smaller.is_none()
            })
    }
}

/// Whether a lifecycle configuration (the bucket's `?lifecycle` document) aborts
/// unfinished multipart uploads of every key. `Err`: it does not parse.
pub fn aborts_unfinished_uploads(xml: &str) -> Result<bool, String> {
    let config: Configuration = quick_xml::de::from_str(xml).map_err(|e| e.to_string())?;
    Ok(config
        .rules
        .iter()
        .any(|r| r.status == "Enabled" && r.abort.is_some() && r.covers_every_key()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(inner: &str) -> String {
        format!("<LifecycleConfiguration><Rule>{inner}</Rule></LifecycleConfiguration>")
    }

    #[test]
    fn only_an_enabled_rule_over_every_key_counts() {
        assert!(aborts_unfinished_uploads(RULE).unwrap());
        let abort = "<AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload>";
        for (inner, counts) in [
            (format!("<Status>Enabled</Status>{abort}"), true),
            (format!("<Status>Enabled</Status><Prefix></Prefix>{abort}"), true),
            (
                format!("<Status>Disabled</Status><Filter><Prefix></Prefix></Filter>{abort}"),
                false,
            ),
            (
                format!("<Status>Enabled</Status><Filter><Prefix>logs/</Prefix></Filter>{abort}"),
                false,
            ),
            (
                format!("<Status>Enabled</Status><Prefix>tmp/</Prefix>{abort}"),
                false,
            ),
            (
                format!(
                    "<Status>Enabled</Status><Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter>{abort}"
                ),
                false,
            ),
            (
                "<Status>Enabled</Status><Expiration><Days>30</Days></Expiration>".to_string(),
                false,
            ),
        ] {
            assert_eq!(
                aborts_unfinished_uploads(&rule(&inner)).unwrap(),
                counts,
                "{inner}"
            );
        }
        assert!(!aborts_unfinished_uploads("<LifecycleConfiguration></LifecycleConfiguration>").unwrap());
        assert!(aborts_unfinished_uploads("not xml <").is_err());
    }
}
