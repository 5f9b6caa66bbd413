//! `appliance.yaml` and the secrets file rendered from the answers, and
//! merged into the files already there.
//!
//! [`config`] and [`secrets`] write the wizard's canonical documents.
//! [`merge`] is a three-way merge by key: `before` is what the wizard would
//! write for the current configuration, `after` what it writes now, and
//! `existing` the file as it is on disk. Where `before` and `after` agree
//! (the operator did not change that part), the existing text is kept
//! byte for byte, comments and all; keys the wizard does not write (e.g.
//! `accounting.first-run`, `ams.topic`, `images.formats`, an `ams.token`
//! secret) are kept; keys the wizard wrote before but not now are dropped.
//! So `--only keystone` changes the `openstack` part and nothing else.

use std::fmt::Write as _;

use crate::config::format::{self, chunks, scalar, Chunk};
use crate::config::sections::images::ListSource;
use crate::config::{Auth, AuthMethod, SCHEMA_VERSION};
use crate::openstack::access::{DomainRef, ProjectRef};

use super::answers::{list_source_text, visibility_name, Answers};

fn q(s: &str) -> String {
    scalar(s)
}

fn p(path: &std::path::Path) -> String {
    scalar(&path.to_string_lossy())
}

/// Render a credential as `openstack.auth` (or `vos[].auth`) lines at
/// `indent` spaces.
fn auth_lines(out: &mut String, auth: &Auth, indent: usize) {
    let i = " ".repeat(indent);
    let kv = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "{i}{k}: {}", q(v));
    };
    let domain = |out: &mut String, prefix: &str, d: &DomainRef| match d {
        DomainRef::Name(n) => kv(out, &format!("{prefix}-domain-name"), n),
        DomainRef::Id(id) => kv(out, &format!("{prefix}-domain-id"), id),
    };
    let project = |out: &mut String, p: &Option<ProjectRef>| match p {
        Some(ProjectRef::Id(id)) => kv(out, "project-id", id),
        Some(ProjectRef::Name { name, domain: d }) => {
            kv(out, "project-name", name);
            domain(out, "project", d);
        }
        None => {}
    };
    kv(out, "type", auth.method.kind().name());
    kv(out, "auth-url", auth.auth_url.as_str());
    match &auth.method {
        AuthMethod::Password {
            username,
            user_domain,
            project: pr,
        } => {
            kv(out, "username", username);
            domain(out, "user", user_domain);
            project(out, pr);
        }
        AuthMethod::ApplicationCredential { id, name, user } => {
            if let Some(id) = id {
                kv(out, "application-credential-id", id);
            }
            if let Some(n) = name {
                kv(out, "application-credential-name", n);
            }
            if let Some((u, d)) = user {
                kv(out, "username", u);
                domain(out, "user", d);
            }
        }
        AuthMethod::OidcAccessToken {
            identity_provider,
            protocol,
            access_token_file,
            project: pr,
        } => {
            kv(out, "identity-provider", identity_provider);
            kv(out, "protocol", protocol);
            if let Some(f) = access_token_file {
                kv(out, "access-token-file", &f.to_string_lossy());
            }
            project(out, pr);
        }
        AuthMethod::Token { project: pr } => project(out, pr),
    }
}

/// The wizard's `appliance.yaml` for `a`.
pub fn config(a: &Answers) -> String {
    let mut o = String::new();
    o.push_str(
        "# fedcloud-appliance site configuration, written by `appliance configure`.\n\
         # Re-run it (or `appliance configure --only SECTION`) to change the answers;\n\
         # keys it does not ask for are kept as they are. `appliance config example`\n\
         # documents every key; `appliance config check` checks the file.\n",
    );
    let _ = writeln!(o, "schema-version: {SCHEMA_VERSION}");

    o.push_str("\n# The site as registered in GOCDB.\nsite:\n");
    let _ = writeln!(o, "  gocdb: {}", q(&a.site.name));
    if let Some(e) = &a.site.endpoint {
        let _ = writeln!(o, "  endpoint: {}", q(e.as_str()));
    }
    if let Some(id) = &a.site.endpoint_id {
        let _ = writeln!(o, "  endpoint-id: {}", q(id));
    }

    let k = &a.keystone;
    o.push_str(
        "\n# How to reach OpenStack; the credential's secret is in `secrets-file`.\nopenstack:\n",
    );
    if let Some(auth) = &k.auth {
        o.push_str("  auth:\n");
        auth_lines(&mut o, auth, 4);
    }
    if let Some(r) = &k.region {
        let _ = writeln!(o, "  region: {}", q(r));
    }
    let _ = writeln!(o, "  interface: {}", k.interface.as_str());
    if let Some(f) = &k.ca_file {
        let _ = writeln!(o, "  ca-file: {}", p(f));
    }
    let _ = writeln!(o, "  ca-dir: {}", p(&a.trust.ca_dir));
    if k.insecure {
        o.push_str("  insecure: true                          # TLS verification OFF\n");
    } else {
        o.push_str("  insecure: false\n");
    }
    let _ = writeln!(o, "  timeout-seconds: {}", k.timeout_seconds);
    let _ = writeln!(o, "  retries: {}", k.retries);

    let _ = writeln!(o, "\nsecrets-file: {}", p(&a.secrets_file));

    o.push_str("\n# VOs and the OpenStack projects that serve them.\nvos:");
    if a.vos.is_empty() {
        o.push_str(" []\n");
    } else {
        o.push('\n');
    }
    for vo in &a.vos {
        let _ = writeln!(o, "  - name: {}", q(&vo.name));
        o.push_str("    projects:\n");
        for pr in &vo.projects {
            match pr {
                ProjectRef::Id(id) => {
                    let _ = write!(o, "      - id: {}", q(id));
                    match a.project_names.get(id) {
                        Some(n) => {
                            let _ = writeln!(o, "   # {n}");
                        }
                        None => o.push('\n'),
                    }
                }
                ProjectRef::Name { name, domain } => {
                    let _ = writeln!(o, "      - name: {}", q(name));
                    match domain {
                        DomainRef::Name(d) => {
                            let _ = writeln!(o, "        domain-name: {}", q(d));
                        }
                        DomainRef::Id(d) => {
                            let _ = writeln!(o, "        domain-id: {}", q(d));
                        }
                    }
                }
            }
        }
        if let Some(auth) = &vo.auth {
            o.push_str("    auth:\n");
            auth_lines(&mut o, auth, 6);
        }
    }

    let hc = &a.host_certificate;
    o.push_str("\npaths:\n");
    let _ = writeln!(o, "  image-data: {}", p(&a.image_data.directory));
    let _ = writeln!(o, "  spool: {}", p(&a.paths.spool));
    let _ = writeln!(o, "  state: {}", p(&a.paths.state));
    let _ = writeln!(o, "  host-cert: {}", p(hc.cert_file()));
    let _ = writeln!(o, "  host-key: {}", p(hc.key_file()));
    let _ = writeln!(o, "  ca-dir: {}", p(&a.trust.ca_dir));

    let c = &a.components;
    o.push_str("\n# What runs, and when (systemd OnCalendar); each job is appliance-<job>.timer.\ncomponents:\n");
    let _ = writeln!(
        o,
        "  accounting:\n    enabled: {}\n    extract-schedule: {}\n    send-schedule: {}",
        c.accounting.enabled,
        q(&c.accounting.extract_schedule),
        q(&c.accounting.send_schedule)
    );
    for (name, comp) in [
        ("info", &c.info),
        ("images", &c.images),
        ("crl-refresh", &c.crl_refresh),
    ] {
        let _ = writeln!(
            o,
            "  {name}:\n    enabled: {}\n    schedule: {}",
            comp.enabled,
            q(&comp.schedule)
        );
    }

    o.push_str("\n# Accounting delivery: the ARGO Messaging Service.\nams:\n");
    let _ = writeln!(o, "  host: {}", q(&a.ams.host));
    let _ = writeln!(o, "  port: {}", a.ams.port);
    let _ = writeln!(o, "  authn-port: {}", a.ams.authn_port);

    o.push_str("\n# Information publishing.\ninfo:\n");
    let _ = writeln!(o, "  gocdb-url: {}", q(a.site.gocdb_url.as_str()));
    if a.info.publish_file.is_some() || a.info.swift_container.is_some() {
        o.push_str("  publish:\n");
        if let Some(f) = &a.info.publish_file {
            let _ = writeln!(o, "    file: {}", p(f));
        }
        if let Some(cn) = &a.info.swift_container {
            let _ = writeln!(o, "    swift:\n      container: {}", q(cn));
        }
    }

    o.push_str(
        "\n# Image synchronisation; tokens and robot passwords are in `secrets-file`.\nimages:\n",
    );
    let im = &a.images;
    // Plain http only where an answer uses it: an http list (its images
    // are usually on the same server), an http registry.
    let http_lists = im
        .lists
        .iter()
        .any(|l| matches!(&l.source, ListSource::Url(u) if u.scheme() == "http"));
    let http_registries = im.registries.iter().any(|r| r.url.scheme() == "http");
    let places: Vec<&str> = [
        (http_lists, "lists"),
        (http_lists, "images"),
        (http_registries, "registries"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, p)| *p)
    .collect();
    if !places.is_empty() {
        let _ = writeln!(
            o,
            "  allow-http: [{}]   # plain http, as the subscriptions below use it",
            places.join(", ")
        );
    }
    o.push_str("  subscriptions:");
    if im.lists.is_empty() && im.registries.is_empty() {
        o.push_str(" []\n");
    } else {
        o.push('\n');
    }
    let list = |o: &mut String, indent: &str, key: &str, items: &[String]| {
        if items.is_empty() {
            let _ = writeln!(o, "{indent}{key}: []");
        } else {
            let _ = writeln!(o, "{indent}{key}:");
            for i in items {
                let _ = writeln!(o, "{indent}  - {}", q(i));
            }
        }
    };
    for l in &im.lists {
        let _ = writeln!(o, "    - name: {}", q(&l.name));
        match &l.source {
            ListSource::Url(_) => {
                let _ = writeln!(o, "      url: {}", q(&list_source_text(&l.source)));
            }
            ListSource::File(f) => {
                let _ = writeln!(o, "      file: {}", p(f));
            }
        }
        let _ = writeln!(
            o,
            "      endorser:\n        dn: {}\n        ca: {}",
            q(&l.endorser_dn),
            q(l.endorser_ca.as_deref().unwrap_or(""))
        );
        list(&mut o, "      ", "vos", &l.vos);
        let _ = writeln!(o, "      visibility: {}", visibility_name(l.visibility));
        if !l.images.is_empty() {
            list(&mut o, "      ", "images", &l.images);
        }
        if !l.prefix.is_empty() {
            let _ = writeln!(o, "      prefix: {}", q(&l.prefix));
        }
        if !l.enabled {
            o.push_str("      enabled: false\n");
        }
    }
    for r in &im.registries {
        let _ = writeln!(o, "    - name: {}", q(&r.name));
        o.push_str("      type: harbor\n");
        let _ = writeln!(o, "      registry: {}", q(r.url.as_str()));
        list(&mut o, "      ", "projects", &r.projects);
        if let Some(x) = &r.repository {
            let _ = writeln!(o, "      repository: {}", q(x));
        }
        if let Some(x) = &r.tag_pattern {
            let _ = writeln!(o, "      tag-pattern: {}", q(x));
        }
        if let Some(x) = &r.robot {
            let _ = writeln!(o, "      robot: {}", q(x));
        }
        list(&mut o, "      ", "vos", &r.vos);
        let _ = writeln!(o, "      visibility: {}", visibility_name(r.visibility));
        if !r.prefix.is_empty() {
            let _ = writeln!(o, "      prefix: {}", q(&r.prefix));
        }
        if !r.enabled {
            o.push_str("      enabled: false\n");
        }
    }
    o
}

/// The wizard's secrets file for `a` (mode 0600 when written).
pub fn secrets(a: &Answers) -> String {
    let mut o = String::new();
    o.push_str(
        "# Secrets of the appliance (mode 0600), written by `appliance configure`.\n\
         # Never copy them into appliance.yaml.\n",
    );
    if let (Some(auth), Some(s)) = (&a.keystone.auth, &a.keystone.secret) {
        if let Some(key) = auth.method.needed_secret() {
            let _ = writeln!(o, "openstack:\n  {key}: {}", q(s.expose()));
        }
    }
    let vo_lines: Vec<String> = a
        .vos
        .iter()
        .filter_map(|vo| {
            let key = vo.auth.as_ref()?.method.needed_secret()?;
            let s = a.vo_secrets.get(&vo.name)?;
            Some(format!(
                "  {}:\n    {key}: {}\n",
                q(&vo.name),
                q(s.expose())
            ))
        })
        .collect();
    if !vo_lines.is_empty() {
        o.push_str("vos:\n");
        o.push_str(&vo_lines.concat());
    }
    let mut img = String::new();
    for l in &a.images.lists {
        if let Some(t) = &l.token {
            let _ = writeln!(img, "  {}:\n    token: {}", q(&l.name), q(t.expose()));
        }
    }
    for r in &a.images.registries {
        if let Some(pw) = &r.password {
            let _ = writeln!(img, "  {}:\n    password: {}", q(&r.name), q(pw.expose()));
        }
    }
    if !img.is_empty() {
        o.push_str("images:\n");
        o.push_str(&img);
    }
    o
}

/// Three-way merge of a document by key (see the module doc). Returns the
/// merged text and notes about what could not be kept.
pub fn merge(existing: &str, before: &str, after: &str) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let parse = |t: &str| {
        format::parse(t)
            .ok()
            .and_then(|n| Some((chunks(t, &n)?, n)))
    };
    let Some((e_chunks, _)) = parse(existing) else {
        notes.push("the existing file could not be read by key; it is replaced whole".into());
        return (after.to_string(), notes);
    };
    let (Some((b_chunks, _)), Some((a_chunks, _))) = (parse(before), parse(after)) else {
        return (after.to_string(), notes);
    };
    let find = |v: &[Chunk], k: &str| v.iter().position(|c| c.key == k);
    let mut out = String::new();
    // The preamble of `after` (its leading comments) comes first.
    let preamble_end = a_chunks
        .first()
        .map_or(after.len(), |c| after.find(&c.text).unwrap_or(0));
    let preamble = &after[..preamble_end];
    out.push_str(preamble);
    for (i, ac) in a_chunks.iter().enumerate() {
        let bc = find(&b_chunks, &ac.key).map(|j| &b_chunks[j]);
        let ec = find(&e_chunks, &ac.key).map(|j| &e_chunks[j]);
        let text = match (bc, ec) {
            (Some(b), Some(e)) if strip(&b.text) == strip(&ac.text) => e.text.clone(),
            (b, Some(e)) if ac.block && e.block => {
                merge_block(existing, e, before, b, after, ac, &mut notes)
            }
            (_, Some(e)) => {
                if ac.block && !e.block {
                    notes.push(format!(
                        "`{}` was written in flow style; it is rewritten in block style and keys the wizard does not ask for in it are not kept",
                        ac.key
                    ));
                }
                ac.text.clone()
            }
            _ => ac.text.clone(),
        };
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&text);
    }
    // Keys the wizard never writes, kept in their order.
    for ec in &e_chunks {
        if find(&a_chunks, &ec.key).is_none() && find(&b_chunks, &ec.key).is_none() {
            out.push('\n');
            out.push_str(&ec.text);
        }
    }
    (out, notes)
}

/// A chunk's text without comment-only and blank lines (so comment
/// changes of the wizard itself do not count as a change of answers).
fn strip(t: &str) -> String {
    t.lines()
        .filter(|l| {
            let x = l.trim_start();
            !x.is_empty() && !x.starts_with('#')
        })
        .map(|l| l.split(" #").next().unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

fn indent_of(c: &Chunk) -> Option<usize> {
    let first = c.text.lines().find(|l| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#')
    })?;
    Some(first.len() - first.trim_start().len())
}

fn merge_block(
    existing: &str,
    e: &Chunk,
    before: &str,
    b: Option<&Chunk>,
    after: &str,
    a: &Chunk,
    notes: &mut Vec<String>,
) -> String {
    let (Some(e_sub), Some(a_sub)) = (chunks(existing, &e.value), chunks(after, &a.value)) else {
        return a.text.clone();
    };
    let b_sub = b.and_then(|b| chunks(before, &b.value)).unwrap_or_default();
    let e_ind = e_sub.first().and_then(indent_of);
    let a_ind = a_sub.first().and_then(indent_of);
    if e_ind.is_some() && a_ind.is_some() && e_ind != a_ind {
        notes.push(format!(
            "`{}` is indented differently from what the wizard writes; keys it does not ask for in it are not kept",
            a.key
        ));
        return a.text.clone();
    }
    fn find<'c>(v: &'c [Chunk], k: &str) -> Option<&'c Chunk> {
        v.iter().find(|c| c.key == k)
    }
    let mut out = a.head.clone();
    for ac in &a_sub {
        let text = match (find(&b_sub, &ac.key), find(&e_sub, &ac.key)) {
            (Some(bc), Some(ec)) if strip(&bc.text) == strip(&ac.text) => ec.text.clone(),
            _ => ac.text.clone(),
        };
        out.push_str(&text);
    }
    for ec in &e_sub {
        if find(&a_sub, &ec.key).is_none() && find(&b_sub, &ec.key).is_none() {
            out.push_str(&ec.text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_unchanged_parts_and_foreign_keys() {
        let before = "# head\na: 1\n\nb:\n  x: 1\n  y: 2\n\nc:\n  - 1\n";
        let after = "# head\na: 2\n\nb:\n  x: 1\n  y: 3\n\nc:\n  - 1\n";
        let existing = "# mine\na: 1   # note\n\nb:\n  x: 1   # keep me\n  y: 2\n  z: own\n\nc:\n  - 1   # kept\n\nextra:\n  k: v\n";
        let (m, notes) = merge(existing, before, after);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            m,
            "# head\na: 2\n\nb:\n  x: 1   # keep me\n  y: 3\n  z: own\n\nc:\n  - 1   # kept\n\nextra:\n  k: v\n"
        );
        // Nothing changed: the existing text comes back (less the header).
        let (same, _) = merge(existing, before, before);
        assert!(same.ends_with("a: 1   # note\n\nb:\n  x: 1   # keep me\n  y: 2\n  z: own\n\nc:\n  - 1   # kept\n\nextra:\n  k: v\n"), "{same}");
    }

    #[test]
    fn merge_drops_what_the_wizard_no_longer_writes() {
        let before = "a:\n  x: 1\n  y: 2\n";
        let after = "a:\n  x: 1\n";
        let (m, _) = merge("a:\n  x: 1\n  y: 2\n", before, after);
        assert_eq!(m, "a:\n  x: 1\n");
    }
}
