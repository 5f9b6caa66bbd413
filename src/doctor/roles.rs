//! What each job needs to be allowed to do in OpenStack, and what a
//! permission probe's answer means. A probe is a real call that changes
//! nothing: a listing with `limit=1`, or a write Glance refuses *after* its
//! policy check (creating an image with an id that exists: 409; uploading
//! to an active image: 409; adding a member that is already there: 409;
//! setting a member status to the one it has). 403 means the role is
//! missing; the remedy names the command that grants it.

use super::{Check, Verdict};
use crate::openstack::Error;

/// One permission a job needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// accounting: `GET /servers/detail?changes-since` (deleted included).
    Servers,
    /// accounting: `GET /flavors/detail`.
    Flavors,
    /// accounting (storage records): `GET /volumes/detail`.
    Volumes,
    /// accounting (IP records): `GET /v2.0/floatingips`.
    FloatingIps,
    /// accounting (`vo-source: property`): `GET /v3/projects/{id}`.
    Project,
    /// accounting (`GlobalUserName`): reading other users.
    Users,
    /// images: `POST /v2/images` in the owner project.
    ImageCreate,
    /// images: `PUT /v2/images/{id}/file`.
    ImageUpload,
    /// images: `POST /v2/images/{id}/members`.
    ImageShare,
    /// images: `PUT /v2/images/{id}/members/{project}` by the member.
    ImageAccept,
    /// info: flavors with their extra specs (GPU properties).
    FlavorExtraSpecs,
    /// info: `GET /v2/images`.
    ImageList,
}

impl Op {
    /// The check id.
    pub fn id(self) -> &'static str {
        match self {
            Op::Servers => "roles.accounting.servers",
            Op::Flavors => "roles.accounting.flavors",
            Op::Volumes => "roles.accounting.volumes",
            Op::FloatingIps => "roles.accounting.floating-ips",
            Op::Project => "roles.accounting.project",
            Op::Users => "roles.accounting.users",
            Op::ImageCreate => "roles.images.create",
            Op::ImageUpload => "roles.images.upload",
            Op::ImageShare => "roles.images.share",
            Op::ImageAccept => "roles.images.accept",
            Op::FlavorExtraSpecs => "roles.info.flavor-extra-specs",
            Op::ImageList => "roles.info.images",
        }
    }

    /// What is being done, in words.
    pub fn what(self) -> &'static str {
        match self {
            Op::Servers => "list servers (deleted ones included)",
            Op::Flavors => "list flavors",
            Op::Volumes => "list volumes",
            Op::FloatingIps => "list floating IPs",
            Op::Project => "read the project (its VO property)",
            Op::Users => "read Keystone users (GlobalUserName of the records)",
            Op::ImageCreate => "create images",
            Op::ImageUpload => "upload image data",
            Op::ImageShare => "share images with the VO projects",
            Op::ImageAccept => "accept images shared with the project",
            Op::FlavorExtraSpecs => "read flavors with their extra specs",
            Op::ImageList => "list images",
        }
    }

    /// The role that allows it under OpenStack's default policies.
    pub fn role(self) -> &'static str {
        match self {
            Op::ImageCreate | Op::ImageUpload | Op::ImageShare | Op::ImageAccept => "member",
            Op::Users => "admin",
            _ => "reader",
        }
    }

    /// How bad it is when refused.
    fn refused(self) -> Verdict {
        match self {
            // cASO without a system reader: records without user names.
            Op::Users => Verdict::Warning,
            _ => Verdict::Failed,
        }
    }
}

/// Who the probe ran as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// User name (or id).
    pub user: String,
    /// The user's domain.
    pub domain: String,
    /// Project id.
    pub project: String,
    /// For the subject: `project NAME (ID) of VO`.
    pub label: String,
    /// The credential kind (`password`, `v3applicationcredential`, ...).
    pub credential: &'static str,
}

/// How to give `who` the `role`.
fn grant(who: &Who, role: &str) -> String {
    let cmd = format!(
        "`openstack role add --user {} --user-domain {} --project {} {role}`",
        who.user, who.domain, who.project
    );
    match who.credential {
        "v3applicationcredential" => format!(
            "give the user the role ({cmd}), then create a new application credential for project {} (it carries the roles it was created with)",
            who.project
        ),
        "v3oidcaccesstoken" => format!(
            "give the federated group of the VO the role `{role}` on project {} (the federation mapping decides the user's roles)",
            who.project
        ),
        _ => cmd,
    }
}

/// What a probe's call gave.
pub fn judge(op: Op, who: &Who, result: Result<String, &Error>) -> Check {
    match result {
        Ok(how) => Check::ok(
            op.id(),
            &who.label,
            format!("allowed to {} ({how})", op.what()),
        ),
        Err(Error::Forbidden { body, .. }) => {
            let remedy = match op {
                Op::Users => format!(
                    "optional: to have user names in the records, {} (or a policy allowing identity:get_user); cASO without a system reader behaves the same",
                    grant(who, "admin")
                ),
                _ => grant(who, op.role()),
            };
            Check::with(
                op.id(),
                op.refused(),
                &who.label,
                format!(
                    "not allowed to {}: 403 ({}); the `{}` role is missing or the policy forbids it",
                    op.what(),
                    body.trim(),
                    op.role()
                ),
                remedy,
            )
        }
        Err(e) => Check::failed(
            op.id(),
            &who.label,
            format!("could not check whether it may {}: {e}", op.what()),
            "check that the service answers (`appliance doctor` again, the service's logs)",
        ),
    }
}

/// The answer of a probe that Glance refuses after its policy check: 409
/// means the policy allowed it (nothing was changed).
pub fn conflict_is_allowed(r: Result<(), Error>) -> Result<String, Error> {
    match r {
        Ok(()) => Ok("the call succeeded".into()),
        Err(Error::Http { status: 409, .. }) => {
            Ok("Glance answered 409 to a probe that changes nothing".into())
        }
        Err(e) => Err(e),
    }
}

/// Without an image to probe with: judge by the roles in the token.
pub fn by_role(op: Op, who: &Who, roles: &[&str], why: &str) -> Check {
    let has = |r: &str| roles.iter().any(|x| x.eq_ignore_ascii_case(r));
    let ok = match op.role() {
        "member" => has("member") || has("_member_") || has("admin"),
        "admin" => has("admin"),
        _ => has("reader") || has("member") || has("_member_") || has("admin"),
    };
    if ok {
        Check::ok(
            op.id(),
            &who.label,
            format!(
                "the token has the `{}` role, which allows it to {} by default ({why})",
                op.role(),
                op.what()
            ),
        )
    } else {
        Check::with(
            op.id(),
            op.refused(),
            &who.label,
            format!(
                "the token's roles [{}] lack `{}`, needed to {} ({why})",
                roles.join(", "),
                op.role(),
                op.what()
            ),
            grant(who, op.role()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openstack::error::Target;

    fn who(credential: &'static str) -> Who {
        Who {
            user: "fedcloud".into(),
            domain: "Default".into(),
            project: "p1".into(),
            label: "project p1".into(),
            credential,
        }
    }

    fn target() -> Target {
        Target::new("POST", &url::Url::parse("http://glance/v2/images").unwrap())
    }

    #[test]
    fn probes() {
        let w = who("password");
        let allowed = conflict_is_allowed(Err(Error::Http {
            target: target(),
            status: 409,
            body: "exists".into(),
        }));
        assert_eq!(
            judge(Op::ImageCreate, &w, allowed.as_ref().map(String::clone)).status,
            Verdict::Ok
        );
        let forbidden = Error::Forbidden {
            target: target(),
            body: "policy".into(),
        };
        let c = judge(Op::ImageCreate, &w, Err(&forbidden));
        assert_eq!(c.status, Verdict::Failed);
        assert!(c.remedy.unwrap().contains(
            "openstack role add --user fedcloud --user-domain Default --project p1 member"
        ));
        assert_eq!(
            judge(Op::Users, &w, Err(&forbidden)).status,
            Verdict::Warning
        );
        let c = judge(
            Op::Servers,
            &who("v3applicationcredential"),
            Err(&forbidden),
        );
        assert!(c.remedy.unwrap().contains("new application credential"));
    }

    #[test]
    fn roles_in_the_token() {
        let w = who("password");
        assert_eq!(
            by_role(Op::ImageAccept, &w, &["reader", "member"], "x").status,
            Verdict::Ok
        );
        assert_eq!(
            by_role(Op::ImageAccept, &w, &["reader"], "x").status,
            Verdict::Failed
        );
        assert_eq!(
            by_role(Op::Servers, &w, &["reader"], "x").status,
            Verdict::Ok
        );
    }
}
