//! The GOCDB test server: get_service / get_service_endpoint XML, filters,
//! GOCDB's parameter errors, faults.

use fedcloud_appliance::testsrv::faults::Fault;
use fedcloud_appliance::testsrv::gocdb::{self, GocdbServer, GocdbService};

use super::{client, listener};

async fn start() -> GocdbServer {
    let mut a =
        GocdbService::parse_site("TEST-SITE,https://keystone.test.example:5000/v3/,12249G0")
            .expect("site");
    a.host_dn = Some("/DC=org/DC=example/CN=keystone.test.example".into());
    let b = GocdbService::parse_site("OTHER&SITE,https://127.0.0.1:5000/v3,7513G0").expect("site");
    gocdb::serve(listener().await, vec![a, b]).expect("GOCDB starts")
}

async fn get(srv: &GocdbServer, query: &str) -> (u16, String) {
    let url = format!("http://{}/gocdbpi/public/?{query}", srv.server.addr());
    let resp = client().get(url).send().await.expect("GET");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// The whole document for one service, element by element as GOCDB's
/// `GetService::getXML` writes it.
#[tokio::test]
async fn get_service_endpoint_renders_gocdb_xml() {
    let srv = start().await;
    let (status, body) = get(
        &srv,
        "method=get_service_endpoint&sitename=TEST-SITE&service_type=org.openstack.nova",
    )
    .await;
    assert_eq!(status, 200);
    let want = r#"<?xml version="1.0" encoding="UTF-8"?>
<results>
  <SERVICE_ENDPOINT PRIMARY_KEY="12249G0">
    <PRIMARY_KEY>12249G0</PRIMARY_KEY>
    <HOSTNAME>keystone.test.example</HOSTNAME>
    <GOCDB_PORTAL_URL>https://goc.egi.eu/portal/index.php?Page_Type=Service&amp;id=12249</GOCDB_PORTAL_URL>
    <HOSTDN>/DC=org/DC=example/CN=keystone.test.example</HOSTDN>
    <BETA>N</BETA>
    <SERVICE_TYPE>org.openstack.nova</SERVICE_TYPE>
    <CORE/>
    <IN_PRODUCTION>Y</IN_PRODUCTION>
    <NODE_MONITORED>Y</NODE_MONITORED>
    <NOTIFICATIONS>Y</NOTIFICATIONS>
    <SITENAME>TEST-SITE</SITENAME>
    <COUNTRY_NAME>Testland</COUNTRY_NAME>
    <COUNTRY_CODE>TL</COUNTRY_CODE>
    <ROC_NAME>NGI_TEST</ROC_NAME>
    <URL>https://keystone.test.example:5000/v3/</URL>
    <ENDPOINTS>
      <ENDPOINT>
        <ID>122490</ID>
        <NAME>TEST-SITE Keystone</NAME>
        <EXTENSIONS/>
        <URL>https://keystone.test.example:5000/v3/</URL>
        <INTERFACENAME>org.openstack.nova</INTERFACENAME>
        <ENDPOINT_MONITORED>Y</ENDPOINT_MONITORED>
      </ENDPOINT>
    </ENDPOINTS>
    <SCOPES>
      <SCOPE>EGI</SCOPE>
      <SCOPE>FedCloud</SCOPE>
    </SCOPES>
    <EXTENSIONS/>
  </SERVICE_ENDPOINT>
</results>
"#;
    assert_eq!(body, want);
}

#[tokio::test]
async fn get_service_lists_all_sites_and_filters() {
    let srv = start().await;
    let (status, body) = get(&srv, "method=get_service&service_type=org.openstack.nova").await;
    assert_eq!(status, 200);
    assert_eq!(body.matches("<SERVICE_ENDPOINT ").count(), 2);
    assert!(body.contains(r#"<SERVICE_ENDPOINT PRIMARY_KEY="7513G0">"#));
    // XML escaping of names; no HOSTDN element when there is none.
    assert!(
        body.contains("<SITENAME>OTHER&amp;SITE</SITENAME>"),
        "{body}"
    );
    assert_eq!(body.matches("<HOSTDN>").count(), 1);
    assert!(body.contains("<HOSTNAME>127.0.0.1</HOSTNAME>"));

    let (_, body) = get(&srv, "method=get_service&sitename=OTHER%26SITE").await;
    assert_eq!(body.matches("<SERVICE_ENDPOINT ").count(), 1);
    let (_, body) = get(
        &srv,
        "method=get_service&service_type=eu.egi.cloud.accounting",
    )
    .await;
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<results/>\n"
    );
    let (_, body) = get(
        &srv,
        "method=get_service&hostname=keystone.test.example&scope=EGI",
    )
    .await;
    assert_eq!(body.matches("<SERVICE_ENDPOINT ").count(), 1);
}

#[tokio::test]
async fn parameter_errors_are_gocdbs() {
    let srv = start().await;
    assert_eq!(
        get(&srv, "method=get_service&colour=blue").await,
        (
            200,
            "<error>Unsupported parameter: colour</error>".to_string()
        )
    );
    assert_eq!(
        get(&srv, "method=get_service&sitename=a%22b").await.1,
        "<error>Unsuported chracter in value: a&quot;b</error>"
    );
    assert_eq!(get(&srv, "method=get_site").await.0, 400);
    let resp = client()
        .get(format!("http://{}/other", srv.server.addr()))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn faults_apply_to_gocdb() {
    let srv = start().await;
    let c = client();
    let control = format!("http://{}/__test/faults", srv.server.addr());
    c.post(&control)
        .json(&serde_json::json!({"status": 500, "count": 1}))
        .send()
        .await
        .expect("POST");
    assert_eq!(get(&srv, "method=get_service").await.0, 500);
    assert_eq!(get(&srv, "method=get_service").await.0, 200);

    srv.faults.push(Fault::truncate_after(100));
    let url = format!(
        "http://{}/gocdbpi/public/?method=get_service",
        srv.server.addr()
    );
    let resp = c.get(&url).send().await.expect("headers arrive");
    assert!(resp.text().await.is_err(), "body cut short");

    srv.faults.push(Fault::drop_connection());
    assert!(c.get(&url).send().await.is_err());

    let stats: serde_json::Value = c
        .get(format!("http://{}/__test/stats", srv.server.addr()))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["faults"]["faulted"], 3);
}
