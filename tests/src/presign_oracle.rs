//! botocore as an independent oracle for AWS IoT WebSocket URLs
//! (`python/presign_iot_websocket.py`): given the same URL, region, time
//! and credentials, what URL AWS's Python SDK presigns.

use std::io::Write;

use serde_json::json;

use crate::moto::run_python;

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
    let mut input = Vec::new();
    for job in jobs {
        let line = json!({
            "url": job.url,
            "region": job.region,
            "timestamp": job.timestamp,
            "access_key": job.access_key,
            "secret_key": job.secret_key,
            "token": job.token,
        });
        writeln!(input, "{line}").expect("in memory");
    }
    let stdout = run_python("presign_iot_websocket.py", &[], &input);
    let urls: Vec<String> = String::from_utf8(stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(urls.len(), jobs.len(), "one URL per job");
    urls
}
