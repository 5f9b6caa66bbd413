//! HEPiX list documents for tests, with every key of spec image-sync §1.2's
//! must-have set.

use serde_json::{json, Value};

/// One image entry.
pub struct Img<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub url: String,
    pub sha512: String,
    pub size: u64,
    pub version: &'a str,
    pub expires: &'a str,
    pub description: &'a str,
}

impl<'a> Img<'a> {
    pub fn new(id: &'a str, url: String, bytes: &[u8]) -> Self {
        Img {
            id,
            title: "Test image [Ubuntu/22.04/KVM]",
            url,
            sha512: hex::encode(openssl::sha::sha512(bytes)),
            size: bytes.len() as u64,
            version: "1.0",
            expires: "2499-12-31T22:00:00Z",
            description: "A test image",
        }
    }
    fn json(&self) -> Value {
        json!({"hv:image": {
            "dc:identifier": self.id, "dc:title": self.title, "dc:description": self.description,
            "hv:uri": self.url, "sl:checksum:sha512": self.sha512, "hv:size": self.size.to_string(),
            "hv:version": self.version, "hv:format": "QCOW2", "hv:hypervisor": "KVM",
            "sl:arch": "x86_64", "sl:os": "Linux", "sl:osname": "Ubuntu", "sl:osversion": "22.04",
            "sl:comments": "", "ad:mpuri": format!("https://appdb.test.local/store/vo/image/{}:1/", self.id),
            "ad:group": "General group", "ad:user:fullname": "Test User",
            "ad:user:guid": "00000000-0000-0000-0000-000000000001",
            "ad:user:uri": "https://appdb.test.local/store/person/test.user",
            "dc:date:expires": self.expires
        }})
    }
}

/// The list JSON.
pub fn list_json(
    identifier: &str,
    version: &str,
    expires: &str,
    endorser_dn: &str,
    images: &[Img],
) -> Vec<u8> {
    let v = json!({"hv:imagelist": {
        "dc:date:created": "2026-01-01T00:00:00Z",
        "dc:date:expires": expires,
        "dc:description": "A VO-wide image list for tests.",
        "dc:identifier": identifier,
        "dc:source": "https://appdb.test.local/",
        "dc:title": "Test list",
        "ad:vo": "vo.alpha.example",
        "hv:endorser": {"hv:x509": {
            "dc:creator": "Applications Database",
            "hv:ca": super::pki::CA_DN,
            "hv:dn": endorser_dn,
            "hv:email": "appdb@test.local"
        }},
        "hv:images": images.iter().map(Img::json).collect::<Vec<_>>(),
        "hv:uri": "https://appdb.test.local/store/vo/vo.alpha.example/image.list",
        "hv:version": version
    }});
    serde_json::to_vec_pretty(&v).unwrap()
}
