//! The document builder and renderer against cloud-info-provider 1.2.0's own
//! output (spec cloud-info.md §2.3, produced by PyPI cloud-info-provider
//! 1.2.0 against the fixture of Appendix A): byte for byte.

use chrono::{TimeZone, Utc};
use fedcloud_appliance::info::build::{build, FlavorSelection, Options};
use fedcloud_appliance::info::facts::{
    CaInfo, FlavorFacts, GocdbEntry, ProjectFacts, ShareFacts, ShareFailure, SiteFacts,
};
use fedcloud_appliance::info::glue::Class;
use serde_json::{json, Map, Value};

const PID: &str = "3b9754ad8c6046b4aec43ec21abe7d8c";

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn project() -> ProjectFacts {
    let img1 = json!({"id": "06c8bfac-0f93-48da-b0eb-4fbad3356f73", "name": "EGI Ubuntu 22.04", "status": "active",
     "visibility": "shared", "owner": PID, "tags": ["atrope-catchall"],
     "disk_format": "qcow2", "container_format": "bare",
     "os_distro": "ubuntu", "os_version": "22.04", "architecture": "x86_64",
     "vmcatcher_event_dc_description": "EGI Ubuntu 22.04 image",
     "vmcatcher_event_ad_mpuri": "registry.egi.eu/egi_vm_images/ubuntu:22.04-sha256:0f1e2d",
     "appdb_id": "registry.egi.eu/egi_vm_images/ubuntu:22.04-sha256:0f1e2d",
     "image_hash": "sha256:0f1e2d",
     "APPLIANCE_ATTRIBUTES": "{\"eu.egi.cloud.tag\": \"2025.01.10\", \"eu.egi.cloud.description\": \"EGI Ubuntu 22.04 image\", \"org.openstack.glance.os_distro\": \"ubuntu\", \"org.openstack.glance.os_version\": \"22.04\", \"org.openstack.glance.architecture\": \"x86_64\", \"eu.egi.cloud.image_ref\": \"egi_vm_images/ubuntu:22.04\"}",
     "file": "/v2/images/06c8bfac-0f93-48da-b0eb-4fbad3356f73/file"});
    let img2 = json!({"id": "9d3c1a56-0000-4a5b-8c7d-111111111111", "name": "local-centos", "status": "active",
     "visibility": "public", "owner": "admin", "disk_format": "raw", "container_format": "bare",
     "os_distro": "centos", "file": "/v2/images/9d3c1a56-0000-4a5b-8c7d-111111111111/file"});
    let gpu_specs = [
        ("Accelerator:Type", "GPU"),
        ("Accelerator:Number", "1.0"),
        ("Accelerator:Vendor", "NVIDIA"),
        ("Accelerator:Model", "Tesla V100"),
        ("Accelerator:Version", "0"),
        ("Accelerator:Memory", "32"),
        ("Accelerator:VirtualizationType", "PCI passthrough"),
        ("pci_passthrough:alias", "GPU:1"),
    ];
    ProjectFacts {
        project_id: PID.into(),
        project_name: Some("vo.example.eu".into()),
        project_domain_name: Some("Default".into()),
        glance_endpoint: "http://127.0.0.1:18080/image".into(),
        images: vec![obj(img1), obj(img2)],
        flavors: vec![
            FlavorFacts {
                id: "1".into(),
                name: "m1.small".into(),
                vcpus: 2,
                ram: 4096,
                disk: 20,
                is_public: true,
                extra_specs: Default::default(),
            },
            FlavorFacts {
                id: "a8082202-f647-4d1f-9b97-4f5ddb38ae8e".into(),
                name: "g1.v100".into(),
                vcpus: 8,
                ram: 32768,
                disk: 80,
                is_public: false,
                extra_specs: gpu_specs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        ],
        quotas: Some(obj(
            json!({"id": PID, "instances": 10, "cores": 40, "ram": 102400, "floating_ips": -1, "fixed_ips": -1,
                 "metadata_items": 128, "injected_files": 5, "injected_file_content_bytes": 10240,
                 "injected_file_path_bytes": 255, "key_pairs": 100, "security_groups": -1,
                 "security_group_rules": -1, "server_groups": 10, "server_group_members": 10}),
        )),
        server_statuses: vec!["ACTIVE".into(), "SHUTOFF".into(), "ERROR".into()],
    }
}

fn site(shares: Vec<ShareFacts>) -> SiteFacts {
    SiteFacts {
        site: "FAKE-SITE".into(),
        endpoint: "http://127.0.0.1:18080/v3".into(),
        gocdb: Some(GocdbEntry {
            gocdb_id: "12345G0".into(),
            site_name: "FAKE-SITE".into(),
        }),
        ca: CaInfo::default(),
        authentication: "v3password".into(),
        nova_version: Some("2.96".into()),
        shares,
    }
}

fn created() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 39, 47).unwrap()
        + chrono::Duration::microseconds(560_928)
}

#[test]
fn byte_identical_to_cloud_info_provider_1_2_0() {
    let facts = site(vec![ShareFacts {
        vo: "vo.example.eu".into(),
        project: PID.into(),
        result: Ok(project()),
    }]);
    let built = build(&facts, &Options::default(), created());
    let want = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/info/cip-1.2.0-spec-example.json"
    ))
    .unwrap();
    let got = built.document.render_compat();
    assert_eq!(got, want);
    assert!(built.notices.is_empty(), "{:?}", built.notices);
}

#[test]
fn failing_share_fractional_gpu_and_full_mode() {
    let mut p = project();
    p.flavors[1]
        .extra_specs
        .insert("Accelerator:Number".into(), "0.5".into());
    p.images.clear();
    let facts = site(vec![
        ShareFacts {
            vo: "broken.vo".into(),
            project: "doesnotexist".into(),
            result: Err(ShareFailure {
                auth: true,
                message: "POST http://k/v3/auth/tokens: 401 Unauthorized: ...".into(),
            }),
        },
        ShareFacts {
            vo: "vo.example.eu".into(),
            project: PID.into(),
            result: Ok(p),
        },
    ]);
    let built = build(&facts, &Options::default(), created());
    let v = built.document.to_json();
    let ept = &v["CloudComputingEndpoint"][0];
    assert_eq!(ept["HealthState"], "warning");
    assert_eq!(ept["HealthStateInfo"], "An unknown exception occurred.");
    assert_eq!(v["CloudComputingVirtualAccelerator"][0]["Number"], 1);
    assert!(
        v.get("CloudComputingImage").is_none(),
        "compat: no images, no key"
    );
    assert_eq!(
        v["CloudComputingService"][0]["Complexity"],
        "endpointType=1,share=1"
    );
    assert_eq!(built.notices.len(), 2, "{:?}", built.notices);
    assert!(built.notices[1].message.contains("not a whole number"));

    let full = Options {
        compat: false,
        select_flavors: FlavorSelection::All,
        ..Options::default()
    };
    let built = build(&facts, &full, created());
    let v = built.document.to_json();
    assert_eq!(v.as_object().unwrap().len(), 9, "every class key");
    assert_eq!(v["CloudComputingImage"], json!([]));
    let info = v["CloudComputingEndpoint"][0]["HealthStateInfo"]
        .as_str()
        .unwrap();
    assert!(info.contains("broken.vo") && info.contains("401"), "{info}");
    let acc = &v["CloudComputingVirtualAccelerator"][0];
    assert_eq!(acc["Memory"], 32768);
    assert_eq!(acc["VirtualizationType"], "PCI passthrough");
    assert_eq!(acc["OtherInfo"]["Accelerator:Number"], "0.5");
    assert_eq!(built.document.entities(Class::Share).len(), 1);
}

#[test]
fn all_shares_failing() {
    let facts = site(vec![ShareFacts {
        vo: "broken.vo".into(),
        project: "x".into(),
        result: Err(ShareFailure {
            auth: true,
            message: "401".into(),
        }),
    }]);
    let built = build(&facts, &Options::default(), created());
    let v = built.document.to_json();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "CloudComputingService",
            "CloudComputingManager",
            "CloudComputingEndpoint",
            "AccessPolicy"
        ]
    );
    assert_eq!(v["CloudComputingEndpoint"][0]["HealthState"], "unknown");
    assert_eq!(
        v["CloudComputingEndpoint"][0]["HealthStateInfo"],
        "No working authentication configured"
    );
    assert!(v["CloudComputingEndpoint"][0]
        .get("ImplementationVersion")
        .is_none());
    assert_eq!(v["AccessPolicy"][0]["Rule"], json!([]));
    assert_eq!(built.shares_ok, 0);
}
