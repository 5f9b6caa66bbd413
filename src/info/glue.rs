//! The GLUE 2.1 document as cloud-info-provider 1.2 renders it
//! (`glue21json`): entity types, their key names and order, and the
//! renderer. Pure: no I/O, no clock (the creation time is a field).
//!
//! Rendering rules (`cloud_info_provider/formatters/glue.py`,
//! `cloud_info_provider/glue.py` at v1.2.0; spec §2.1-§2.2): the document
//! is `{ClassName: [entity, ...]}` with class keys in first-insertion order
//! ([`Document::push`] records it); every entity starts with `ID`,
//! `Validity`, `CreationTime`, `Name`, then `OtherInfo` and `Associations`
//! when not empty, then the class keys in the formatter's order; a `None`
//! value is left out, an empty list is kept.

use chrono::{DateTime, Timelike, Utc};
use serde_json::{Map, Value};

use super::pyjson;

/// Seconds a document is valid for (`GlueBase.validity`, 12 h).
pub const VALIDITY: i64 = 43_200;

/// The GLUE classes of the document, by their JSON key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// `CloudComputingService`
    Service,
    /// `CloudComputingManager`
    Manager,
    /// `CloudComputingEndpoint`
    Endpoint,
    /// `CloudComputingImage`
    Image,
    /// `CloudComputingInstanceType`
    InstanceType,
    /// `CloudComputingVirtualAccelerator`
    Accelerator,
    /// `Share`
    Share,
    /// `MappingPolicy`
    MappingPolicy,
    /// `AccessPolicy`
    AccessPolicy,
}

impl Class {
    /// Every class, in the order of a full (non-compat) document.
    pub const ALL: [Class; 9] = [
        Class::Service,
        Class::Manager,
        Class::Endpoint,
        Class::Image,
        Class::InstanceType,
        Class::Accelerator,
        Class::Share,
        Class::MappingPolicy,
        Class::AccessPolicy,
    ];

    /// The JSON key (the pydantic class name in cloud-info-provider).
    pub fn key(self) -> &'static str {
        match self {
            Class::Service => "CloudComputingService",
            Class::Manager => "CloudComputingManager",
            Class::Endpoint => "CloudComputingEndpoint",
            Class::Image => "CloudComputingImage",
            Class::InstanceType => "CloudComputingInstanceType",
            Class::Accelerator => "CloudComputingVirtualAccelerator",
            Class::Share => "Share",
            Class::MappingPolicy => "MappingPolicy",
            Class::AccessPolicy => "AccessPolicy",
        }
    }
}

/// One entity: the common GLUE fields plus its class keys in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// `ID`.
    pub id: String,
    /// `Name`.
    pub name: Option<String>,
    /// `OtherInfo` (left out when empty).
    pub other_info: Map<String, Value>,
    /// `Associations`: class name -> ids, in insertion order.
    pub associations: Map<String, Value>,
    /// The class keys, in the formatter's order; `Value::Null` is left out.
    pub fields: Vec<(&'static str, Value)>,
}

impl Entity {
    /// An entity with `id` and no other data.
    pub fn new(id: impl Into<String>) -> Self {
        Entity {
            id: id.into(),
            name: None,
            other_info: Map::new(),
            associations: Map::new(),
            fields: Vec::new(),
        }
    }

    /// With a `Name`.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Append `id` to the association list of `class` (`add_association`).
    pub fn associate(&mut self, class: &str, id: &str) {
        let list = self
            .associations
            .entry(class.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = list {
            a.push(Value::String(id.to_string()));
        }
    }

    /// Set a class key (kept in the order first set).
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    /// A class key's value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn to_json(&self, creation_time: &str, order: &[&str]) -> Value {
        let mut o = Map::new();
        o.insert("ID".into(), Value::String(self.id.clone()));
        o.insert("Validity".into(), Value::from(VALIDITY));
        o.insert(
            "CreationTime".into(),
            Value::String(creation_time.to_string()),
        );
        if let Some(n) = &self.name {
            o.insert("Name".into(), Value::String(n.clone()));
        }
        if !self.other_info.is_empty() {
            o.insert("OtherInfo".into(), Value::Object(self.other_info.clone()));
        }
        if !self.associations.is_empty() {
            o.insert(
                "Associations".into(),
                Value::Object(self.associations.clone()),
            );
        }
        for key in order {
            if let Some((_, v)) = self.fields.iter().find(|(k, _)| k == key) {
                if !v.is_null() {
                    o.insert((*key).to_string(), v.clone());
                }
            }
        }
        Value::Object(o)
    }
}

/// Class keys in the formatter's order (`dump_glue_*`).
fn field_order(class: Class) -> &'static [&'static str] {
    match class {
        Class::Service => &[
            "Type",
            "QualityLevel",
            "StatusInfo",
            "ServiceAUP",
            "Complexity",
            "Capability",
            "TotalVM",
            "RunningVM",
            "SuspendedVM",
            "HaltedVM",
        ],
        Class::Manager => &[
            "ProductName",
            "ProductVersion",
            "HypervisorName",
            "HypervisorVersion",
            "TotalCPUs",
            "TotalRAM",
            "InstanceMaxCPU",
            "InstanceMinCPU",
            "InstanceMaxRAM",
            "InstanceMinRAM",
            "NetworkVirtualizationType",
            "CPUVirtualizationType",
            "ManagerVirtualdiskFormat",
            "ManagerFailover",
            "ManagerLiveMigration",
            "ManagerVMBackupRestore",
        ],
        Class::Endpoint => &[
            "Capability",
            "QualityLevel",
            "InterfaceName",
            "InterfaceVersion",
            "HealthState",
            "HealthStateInfo",
            "ServingState",
            "Technology",
            "Implementor",
            "ImplementationName",
            "ImplementationVersion",
            "DowntimeInfo",
            "Semantics",
            "Authentication",
            "IssuerCA",
            "TrustedCA",
            "URL",
        ],
        Class::Image => &[
            "MarketplaceURL",
            "OSPlatform",
            "OSName",
            "OSVersion",
            "Description",
            "AccessInfo",
        ],
        Class::InstanceType => &[
            "Platform",
            "CPU",
            "RAM",
            "Disk",
            "NetworkIn",
            "NetworkOut",
            "NetworkInfo",
        ],
        Class::Accelerator => &[
            "Type",
            "Number",
            "Vendor",
            "Model",
            "Version",
            "ClockSpeed",
            "Memory",
            "ComputeCapability",
            "VirtualizationType",
        ],
        Class::Share => &[
            "InstanceMaxCPU",
            "InstanceMaxRAM",
            "SLA",
            "TotalVM",
            "RunningVM",
            "SuspendedVM",
            "HaltedVM",
            "MaxVM",
            "NetworkInfo",
            "DefaultNetworkType",
            "PublicNetworkName",
            "ProjectID",
        ],
        Class::MappingPolicy | Class::AccessPolicy => &["Rule", "Scheme"],
    }
}

/// A whole document: entities per class, classes in first-insertion order.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `CreationTime` of every entity.
    pub creation_time: DateTime<Utc>,
    classes: Vec<(Class, Vec<Entity>)>,
}

impl Document {
    /// An empty document created at `creation_time`.
    pub fn new(creation_time: DateTime<Utc>) -> Self {
        Document {
            creation_time,
            classes: Vec::new(),
        }
    }

    /// Add an entity (`add_glue`); returns its index within its class.
    pub fn push(&mut self, class: Class, e: Entity) -> usize {
        match self.classes.iter_mut().find(|(c, _)| *c == class) {
            Some((_, list)) => {
                list.push(e);
                list.len() - 1
            }
            None => {
                self.classes.push((class, vec![e]));
                0
            }
        }
    }

    /// The entities of `class`.
    pub fn entities(&self, class: Class) -> &[Entity] {
        self.classes
            .iter()
            .find(|(c, _)| *c == class)
            .map(|(_, l)| l.as_slice())
            .unwrap_or(&[])
    }

    /// The first entity of `class`, mutable.
    pub fn first_mut(&mut self, class: Class) -> Option<&mut Entity> {
        self.classes
            .iter_mut()
            .find(|(c, _)| *c == class)
            .and_then(|(_, l)| l.first_mut())
    }

    /// Make every class key present (an empty list when there is nothing),
    /// in the canonical order: what consumers that index the document by
    /// class (cloud-info-api) need to keep a site without images.
    pub fn all_classes(&mut self) {
        let mut out = Vec::with_capacity(Class::ALL.len());
        for class in Class::ALL {
            let list = match self.classes.iter().position(|(c, _)| *c == class) {
                Some(i) => std::mem::take(&mut self.classes[i].1),
                None => Vec::new(),
            };
            out.push((class, list));
        }
        self.classes = out;
    }

    /// The number of entities.
    pub fn len(&self) -> usize {
        self.classes.iter().map(|(_, l)| l.len()).sum()
    }

    /// Whether the document has no entity at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The document as an ordered JSON value.
    pub fn to_json(&self) -> Value {
        let ct = isoformat(&self.creation_time);
        let mut top = Map::new();
        for (class, list) in &self.classes {
            let order = field_order(*class);
            top.insert(
                class.key().to_string(),
                Value::Array(list.iter().map(|e| e.to_json(&ct, order)).collect()),
            );
        }
        Value::Object(top)
    }

    /// What cloud-info-provider prints: `json.dumps(doc)` and a newline.
    pub fn render_compat(&self) -> String {
        let mut s = pyjson::dumps(&self.to_json());
        s.push('\n');
        s
    }

    /// The same document indented by 2 (`json.dumps(doc, indent=2)`), and
    /// a newline.
    pub fn render_pretty(&self) -> String {
        let mut s = pyjson::dumps_indent(&self.to_json(), 2);
        s.push('\n');
        s
    }
}

/// `datetime.isoformat()` of an aware UTC time: `2026-11-22T12:39:47.560928+00:00`,
/// with the `.ffffff` part only when the microseconds are not zero.
pub fn isoformat(t: &DateTime<Utc>) -> String {
    let micros = t.nanosecond() % 1_000_000_000 / 1_000;
    let base = t.format("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn entity_key_order_and_omissions() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let mut d = Document::new(t);
        let mut e = Entity::new("x");
        e.set("Scheme", "org.glite.standard");
        e.set("Rule", Value::Array(vec![]));
        e.associate("Share", "s1");
        e.associate("PolicyUserDomain", "vo");
        e.associate("Share", "s2");
        d.push(Class::MappingPolicy, e);
        let mut m = Entity::new("m");
        m.set("InstanceMaxCPU", Value::Null);
        d.push(Class::Manager, m);
        assert_eq!(
            d.render_compat(),
            "{\"MappingPolicy\": [{\"ID\": \"x\", \"Validity\": 43200, \"CreationTime\": \"2026-01-02T03:04:05+00:00\", \
             \"Associations\": {\"Share\": [\"s1\", \"s2\"], \"PolicyUserDomain\": [\"vo\"]}, \"Rule\": [], \"Scheme\": \"org.glite.standard\"}], \
             \"CloudComputingManager\": [{\"ID\": \"m\", \"Validity\": 43200, \"CreationTime\": \"2026-01-02T03:04:05+00:00\"}]}\n"
        );
        d.all_classes();
        let keys: Vec<String> = d.to_json().as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 9);
        assert_eq!(keys[0], "CloudComputingService");
        assert_eq!(d.entities(Class::Manager).len(), 1);
    }

    #[test]
    fn creation_time_like_python() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 12, 39, 47).unwrap()
            + chrono::Duration::microseconds(560_928);
        assert_eq!(isoformat(&t), "2026-11-22T12:39:47.560928+00:00");
        let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(isoformat(&t), "2023-11-14T22:13:20+00:00");
    }
}
