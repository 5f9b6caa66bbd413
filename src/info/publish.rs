//! Publishing targets: a local file (atomic) and a Swift object (the
//! object name catch-all uses, integrity checked by Swift with `ETag`).
//! A document is published only whole and only when it is worth
//! publishing (the command decides: never an empty or failed one).

use std::path::Path;

use bytes::Bytes;
use openssl::hash::{hash, MessageDigest};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, ETAG};
use reqwest::Method;

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

#[cfg(test)]
mod tests {
    use super::*;

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
