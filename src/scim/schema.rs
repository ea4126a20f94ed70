//! The schema registry: `schemas/*.json` is the single source of truth for attribute
//! characteristics (RFC 7643 §2.2, §7). The files are embedded at build time, served verbatim by
//! `/Schemas`, and read here so that validation, PATCH, filters and projection never repeat them.

use serde::Deserialize;
use serde_json::Value;
use std::sync::LazyLock;

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// scimd's own extension: the person's role in the organization.
pub const ORGANIZATION_USER: &str = "urn:scimd:params:scim:schemas:extension:organization:2.0:User";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Reference,
    Complex,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    #[serde(rename = "type")]
    pub typ: AttrType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default = "read_write")]
    pub mutability: Mutability,
    #[serde(default = "returned_default")]
    pub returned: Returned,
    #[serde(default)]
    pub sub_attributes: Vec<Attribute>,
}

fn read_write() -> Mutability {
    Mutability::ReadWrite
}
fn returned_default() -> Returned {
    Returned::Default
}

impl Attribute {
    /// Sub-attribute by name, case-insensitively (RFC 7643 §2.1).
    pub fn sub(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
    pub fn is_complex(&self) -> bool {
        self.typ == AttrType::Complex
    }
    fn common(
        name: &str,
        typ: AttrType,
        mutability: Mutability,
        returned: Returned,
        case_exact: bool,
    ) -> Self {
        Attribute {
            name: name.to_owned(),
            typ,
            multi_valued: false,
            required: false,
            case_exact,
            mutability,
            returned,
            sub_attributes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Schema {
    pub id: String,
    pub attributes: Vec<Attribute>,
    #[serde(skip)]
    pub raw: Value,
}

impl Schema {
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// The two resource types scimd serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }
    pub fn core_uri(self) -> &'static str {
        match self {
            Kind::User => CORE_USER,
            Kind::Group => CORE_GROUP,
        }
    }
    pub fn schema(self) -> &'static ResourceSchema {
        match self {
            Kind::User => &REGISTRY.user,
            Kind::Group => &REGISTRY.group,
        }
    }
}

/// Where an attribute lives in a resource document: at the top level (core schema and the common
/// attributes) or inside an extension object keyed by the extension's URN (RFC 7643 §3.3).
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Core,
    Extension(&'a Schema),
}

impl PartialEq for Scope<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Scope<'_> {
    pub fn key(&self) -> Option<&str> {
        match self {
            Scope::Core => None,
            Scope::Extension(s) => Some(&s.id),
        }
    }
}

/// A resource type with its core schema, extensions and the common attributes (RFC 7643 §3.1).
#[derive(Debug)]
pub struct ResourceSchema {
    pub kind: Kind,
    pub core: Schema,
    pub extensions: Vec<Schema>,
    pub common: Vec<Attribute>,
}

impl ResourceSchema {
    /// Every top-level attribute of the core schema plus the common ones.
    pub fn core_attr(&self, name: &str) -> Option<&Attribute> {
        self.common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .or_else(|| self.core.attr(name))
    }

    /// The schema a URN names, case-insensitively.
    pub fn scope_for_uri(&self, uri: &str) -> Option<Scope<'_>> {
        if uri.eq_ignore_ascii_case(&self.core.id) {
            return Some(Scope::Core);
        }
        self.extensions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(uri))
            .map(Scope::Extension)
    }

    /// Resolves `[URI:]name` to its scope and attribute. Unqualified names are core first, then
    /// any extension (clients such as Entra ID send extension attributes unqualified).
    pub fn resolve(&self, uri: Option<&str>, name: &str) -> Option<(Scope<'_>, &Attribute)> {
        match uri {
            None => self.core_attr(name).map(|a| (Scope::Core, a)).or_else(|| {
                self.extensions
                    .iter()
                    .find_map(|s| s.attr(name).map(|a| (Scope::Extension(s), a)))
            }),
            Some(uri) => match self.scope_for_uri(uri)? {
                Scope::Core => self.core_attr(name).map(|a| (Scope::Core, a)),
                Scope::Extension(s) => s.attr(name).map(|a| (Scope::Extension(s), a)),
            },
        }
    }

    /// Every schema URN this resource type may carry.
    pub fn extension(&self, uri: &str) -> Option<&Schema> {
        self.extensions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(uri))
    }
}

pub struct Registry {
    pub user: ResourceSchema,
    pub group: ResourceSchema,
    /// Every schema served by `/Schemas`, in a stable order.
    pub schemas: Vec<Schema>,
    /// `/ResourceTypes` as written in `schemas/ResourceTypes.json`.
    pub resource_types: Vec<Value>,
}

macro_rules! schema_file {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/", $name))
    };
}

const SCHEMA_FILES: &[&str] = &[
    schema_file!("User.json"),
    schema_file!("Group.json"),
    schema_file!("EnterpriseUser.json"),
    schema_file!("OrganizationUser.json"),
    schema_file!("ServiceProviderConfig.json"),
    schema_file!("ResourceType.json"),
    schema_file!("Schema.json"),
];

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(load);

#[allow(clippy::expect_used)] // The files are part of the binary; a broken one fails every test at once.
fn load() -> Registry {
    let schemas: Vec<Schema> = SCHEMA_FILES
        .iter()
        .map(|text| {
            let raw: Value = serde_json::from_str(text).expect("schemas/*.json is valid JSON");
            let mut s: Schema =
                serde_json::from_value(raw.clone()).expect("schemas/*.json is a SCIM Schema");
            s.raw = raw;
            s
        })
        .collect();
    let find = |id: &str| {
        schemas
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .expect("a core schema file is missing")
    };
    let resource_types: Vec<Value> = serde_json::from_str(schema_file!("ResourceTypes.json"))
        .expect("schemas/ResourceTypes.json is a JSON array");
    Registry {
        user: ResourceSchema {
            kind: Kind::User,
            core: find(CORE_USER),
            extensions: vec![find(ENTERPRISE_USER), find(ORGANIZATION_USER)],
            common: common_attributes(),
        },
        group: ResourceSchema {
            kind: Kind::Group,
            core: find(CORE_GROUP),
            extensions: vec![],
            common: common_attributes(),
        },
        schemas,
        resource_types,
    }
}

/// RFC 7643 §3.1: `schemas`, `id`, `externalId` and `meta` belong to every resource but to no
/// schema.
fn common_attributes() -> Vec<Attribute> {
    use AttrType::*;
    use Mutability::*;
    let mut meta = Attribute::common("meta", Complex, ReadOnly, Returned::Default, false);
    meta.sub_attributes = vec![
        Attribute::common("resourceType", String, ReadOnly, Returned::Default, true),
        Attribute::common("created", DateTime, ReadOnly, Returned::Default, false),
        Attribute::common("lastModified", DateTime, ReadOnly, Returned::Default, false),
        Attribute::common("location", Reference, ReadOnly, Returned::Default, true),
        Attribute::common("version", String, ReadOnly, Returned::Default, true),
    ];
    // RFC 7643 §3: every resource's `schemas`, the URNs of its core schema and extensions; a
    // filter may name it like any multi-valued attribute (RFC 7644 §3.4.2.2).
    let mut schemas = Attribute::common("schemas", Reference, ReadOnly, Returned::Always, false);
    schemas.multi_valued = true;
    vec![
        schemas,
        Attribute::common("id", String, ReadOnly, Returned::Always, true),
        Attribute::common("externalId", String, ReadWrite, Returned::Default, true),
        meta,
    ]
}
