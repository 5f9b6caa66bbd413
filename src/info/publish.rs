//! Publishing targets: a local file (atomic), a Swift object (the object
//! name catch-all uses, integrity checked by Swift with `ETag`) and an AMS
//! topic (catch-all's `SITE_<SITE>_ENDPOINT_<ID>`, the document gzipped and
//! base64-encoded, within a size limit, through the accounting flow's AMS
//! client [`crate::messaging::ams`]). A document is published only whole
//! and only when it is worth publishing (the command decides: never an
//! empty or failed one).

use std::io::Write as _;
use std::path::Path;

use bytes::Bytes;
use openssl::hash::{hash, MessageDigest};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, ETAG};
use reqwest::Method;

use crate::messaging::ams::{Accepted, AmsClient, AmsError};
use crate::openstack::{Error, Session};

/// catch-all's object name for a site endpoint:
/// `{gocdb with '.' -> '-'}-{md5(endpoint)}.json`
/// (`deploy/roles/catchall/tasks/main.yml`).
pub fn object_name(gocdb: &str, endpoint: &str) -> String {
    format!(
        "{}-{}.json",
        gocdb.replace('.', "-"),
        md5_hex(endpoint.as_bytes())
    )
}

/// MD5 as lower-case hex.
pub fn md5_hex(b: &[u8]) -> String {
    hex::encode(hash(MessageDigest::md5(), b).expect("MD5"))
}

/// Write `doc` to `path` atomically (readers see the old or the new
/// document, never a part), mode 0644.
pub fn to_file(path: &Path, doc: &[u8]) -> std::io::Result<()> {
    crate::state::write_atomic(path, doc, 0o644)
}

/// Upload `doc` as `container/object` of the session's object store; the
/// container is created when missing. Swift checks the `ETag` (MD5) and
/// refuses a corrupted upload.
pub async fn to_swift(s: &Session, container: &str, object: &str, doc: Bytes) -> Result<(), Error> {
    let seg = |x: &str| {
        url::form_urlencoded::byte_serialize(x.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    s.send_raw(
        Method::PUT,
        "object-store",
        &seg(container),
        HeaderMap::new(),
        Some(Bytes::new()),
    )
    .await?;
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        ETAG,
        HeaderValue::from_str(&md5_hex(&doc)).expect("hex is a header value"),
    );
    let path = format!("{}/{}", seg(container), seg(object));
    s.send_raw(Method::PUT, "object-store", &path, h, Some(doc))
        .await?;
    Ok(())
}

/// catch-all's AMS topic of a site endpoint (`cloud-info/ams-wrapper.sh`
/// before catch-all #434): `SITE_<gocdb with '.' -> '-'>_ENDPOINT_<gocdb id>`,
/// e.g. `SITE_IFCA-LCG2_ENDPOINT_7513G0`.
pub fn ams_topic(gocdb: &str, gocdb_id: &str) -> String {
    format!("SITE_{}_ENDPOINT_{gocdb_id}", gocdb.replace('.', "-"))
}

/// The AMS message payload of a document: gzip (no file name, mtime 0, so
/// the same document gives the same bytes). The AMS client base64-encodes
/// it into the message's `data`, as catch-all's `gzip | base64 -w 0` did.
pub fn ams_payload(doc: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(doc.len() / 4 + 64),
        flate2::Compression::best(),
    );
    gz.write_all(doc).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// Length of the base64 text of `n` bytes (what AMS stores and limits).
pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Why the document did not go to AMS.
#[derive(Debug, thiserror::Error)]
pub enum AmsPublishError {
    /// The message would exceed the limit.
    #[error("the AMS message would be {bytes} bytes (base64 of the gzipped document), over the limit of {limit}; raise `info.publish.ams.max-message-bytes` (AMS accepts up to 1.5 MB) or publish fewer images (`info.only-appdb-images`)")]
    TooLarge {
        /// base64 bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// No topic: neither configured nor derivable.
    #[error("no AMS topic: GOCDB gave no endpoint id; set `site.endpoint-id` (the GOCDB primary key, e.g. 12249G0) or `info.publish.ams.topic`")]
    NoTopic,
    /// The AMS client failed.
    #[error(transparent)]
    Ams(#[from] AmsError),
}

/// Publish the gzipped document `payload` under `name` (the message's
/// `empaid` attribute: the AMS client's one) after checking its size.
pub async fn to_ams(
    client: &mut AmsClient,
    name: &str,
    payload: &[u8],
    limit: usize,
) -> Result<Accepted, AmsPublishError> {
    let bytes = base64_len(payload.len());
    if bytes > limit {
        return Err(AmsPublishError::TooLarge { bytes, limit });
    }
    Ok(client.publish(name, payload).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ams_topic_and_payload() {
        assert_eq!(
            ams_topic("fedcloud.srce.hr", "7513G0"),
            "SITE_fedcloud-srce-hr_ENDPOINT_7513G0"
        );
        assert_eq!(ams_topic("IFCA-LCG2", "1G0"), "SITE_IFCA-LCG2_ENDPOINT_1G0");
        let doc = br#"{"CloudComputingService": [{"ID": "x"}]}"#.repeat(100);
        let gz = ams_payload(&doc);
        assert!(gz.len() < doc.len() / 10, "{}", gz.len());
        assert_eq!(gz, ams_payload(&doc), "reproducible");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back).unwrap();
        assert_eq!(back, doc);
        assert_eq!(
            (base64_len(0), base64_len(1), base64_len(3), base64_len(4)),
            (0, 4, 4, 8)
        );
    }

    #[test]
    fn catch_all_object_names() {
        // python3 -c 'import hashlib; print(hashlib.md5(b"https://cloud.cro-ngi.hr:5000/v3/").hexdigest())'
        assert_eq!(
            object_name("fedcloud.srce.hr", "https://cloud.cro-ngi.hr:5000/v3/"),
            format!(
                "fedcloud-srce-hr-{}.json",
                md5_hex(b"https://cloud.cro-ngi.hr:5000/v3/")
            )
        );
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
