//! Policies that need a service only Azure provides: compiling one is an
//! error naming what is missing, never a silent skip.
//!
//! `get-authorization-context` (API Management's credential manager),
//! `llm-content-safety` (Azure AI Content Safety), the semantic caches
//! (an embeddings backend and a vector cache), `authentication-token-store`
//! (the credential manager's token store), and the Dapr policies
//! (`publish-to-dapr`, `invoke-dapr-binding`, `set-backend-service
//! dapr-app-id`) when no Dapr sidecar is configured (`[dapr] sidecar_url`;
//! with one they run, see `dapr.rs`).

use crate::policy::xml::Element;

/// The message for the Dapr policies.
pub const DAPR: &str = "<set-backend-service dapr-app-id> needs a Dapr sidecar: configure [dapr] sidecar_url in the configuration file, or name a backend URL or backend-id instead";

/// Why `e` cannot run here, if it needs an Azure-only service.
pub fn reason(e: &Element) -> Option<&'static str> {
    Some(match e.name.as_str() {
        "get-authorization-context" => {
            "needs API Management's credential manager (authorizations and their OAuth connections), which exists only in Azure; fetch tokens with validate-jwt/send-request against your identity provider instead"
        }
        "authentication-token-store" => {
            "needs API Management's credential manager token store, which exists only in Azure"
        }
        "llm-content-safety" => {
            "needs Azure AI Content Safety, an Azure-only service; this gateway cannot run it"
        }
        "azure-openai-semantic-cache-lookup"
        | "azure-openai-semantic-cache-store"
        | "llm-semantic-cache-lookup"
        | "llm-semantic-cache-store" => {
            "needs an embeddings backend and a vector-search cache (Azure Managed Redis), which this gateway does not have"
        }
        "publish-to-dapr" | "invoke-dapr-binding" => {
            "needs a Dapr sidecar: configure [dapr] sidecar_url in the configuration file"
        }
        "send-service-bus-message" => {
            "needs Azure Service Bus with a managed identity, which exist only in Azure"
        }
        _ => return None,
    })
}
