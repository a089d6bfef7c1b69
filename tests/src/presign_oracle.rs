//! botocore as an independent oracle for AWS IoT WebSocket URLs
//! (`python/presign_iot_websocket.py`): given the same URL, region, time
//! and credentials, what URL AWS's Python SDK presigns.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::moto::python;

/// One URL to presign.
#[derive(Debug, Clone)]
pub struct PresignJob {
    /// `https://host[:port]/mqtt`.
    pub url: String,
    /// The signing region.
    pub region: String,
    /// `YYYYMMDDTHHMMSSZ`, as in `X-Amz-Date`.
    pub timestamp: String,
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// The session token, if any.
    pub token: Option<String>,
}

/// botocore's presigned `wss://` URL for each job, in order.
pub fn botocore_presign(jobs: &[PresignJob]) -> Vec<String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/presign_iot_websocket.py"
    );
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the oracle starts");
    let mut input = child.stdin.take().expect("piped");
    for job in jobs {
        let line = json!({
            "url": job.url,
            "region": job.region,
            "timestamp": job.timestamp,
            "access_key": job.access_key,
            "secret_key": job.secret_key,
            "token": job.token,
        });
        writeln!(input, "{line}").expect("the oracle reads its input");
    }
    drop(input);
    let output = child.wait_with_output().expect("the oracle ends");
    assert!(
        output.status.success(),
        "the oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let urls: Vec<String> = String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(urls.len(), jobs.len(), "one URL per job");
    urls
}
