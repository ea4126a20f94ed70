//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`, served from
//! `schemas/*.json` with absolute locations. They describe no tenant data and need no token.

use super::extract::BaseUrl;
use super::{scim_json, AppState, MAX_BODY_BYTES, MAX_RESULTS};
use crate::error::{Error, Result};
use crate::scim::schema::{LIST_RESPONSE, REGISTRY};
use crate::service::bulk::MAX_BULK_OPERATIONS;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
}

type Params = Query<Vec<(String, String)>>;

/// RFC 7644 §4: discovery endpoints do not filter.
fn refuse_filter(q: &[(String, String)]) -> Result<()> {
    if q.iter().any(|(k, _)| k.eq_ignore_ascii_case("filter")) {
        return Err(Error::forbidden(
            "discovery endpoints do not support filtering",
        ));
    }
    Ok(())
}

fn with_location(mut v: Value, base: &str, endpoint: &str, id: &str) -> Value {
    v["meta"]["location"] = Value::String(format!("{base}/{endpoint}/{id}"));
    v
}

/// Exactly what works, and the limits that bound it.
async fn service_provider_config(BaseUrl(base): BaseUrl) -> Response {
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://github.com/scimd/scimd#readme",
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": MAX_BULK_OPERATIONS, "maxPayloadSize": MAX_BODY_BYTES},
            "filter": {"supported": true, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            // RFC 9865
            "pagination": {
                "cursor": true,
                "index": true,
                "defaultPaginationMethod": "index",
                "defaultPageSize": super::DEFAULT_COUNT,
                "maxPageSize": MAX_RESULTS,
            },
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Provisioning token",
                "description": "A per-organization bearer token created with `scimd token create`; send it as Authorization: Bearer <token>.",
                "primary": true
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base}/ServiceProviderConfig"),
            }
        }),
    )
}

fn list(resources: Vec<Value>) -> Response {
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_RESPONSE],
            "totalResults": resources.len(),
            "startIndex": 1,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

fn all_resource_types(base: &str) -> Vec<Value> {
    REGISTRY
        .resource_types
        .iter()
        .map(|rt| {
            let id = rt["id"].as_str().unwrap_or_default().to_owned();
            with_location(rt.clone(), base, "ResourceTypes", &id)
        })
        .collect()
}

fn all_schemas(base: &str) -> Vec<Value> {
    REGISTRY
        .schemas
        .iter()
        .map(|s| with_location(s.raw.clone(), base, "Schemas", &s.id))
        .collect()
}

async fn resource_types(BaseUrl(base): BaseUrl, Query(q): Params) -> Result<Response> {
    refuse_filter(&q)?;
    Ok(list(all_resource_types(&base)))
}

async fn resource_type(BaseUrl(base): BaseUrl, Path(id): Path<String>) -> Result<Response> {
    all_resource_types(&base)
        .into_iter()
        .find(|rt| rt["id"].as_str() == Some(id.as_str()))
        .map(|rt| scim_json(StatusCode::OK, &rt))
        .ok_or_else(|| Error::not_found(format!("no resource type {id:?}")))
}

async fn schemas(BaseUrl(base): BaseUrl, Query(q): Params) -> Result<Response> {
    refuse_filter(&q)?;
    Ok(list(all_schemas(&base)))
}

async fn schema(BaseUrl(base): BaseUrl, Path(id): Path<String>) -> Result<Response> {
    all_schemas(&base)
        .into_iter()
        .find(|s| s["id"].as_str() == Some(id.as_str()))
        .map(|s| scim_json(StatusCode::OK, &s))
        .ok_or_else(|| Error::not_found(format!("no schema {id:?}")))
}
