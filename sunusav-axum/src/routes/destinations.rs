//! Where payouts go: a member's standing keysend node, and the invoice a
//! beneficiary submits for their pot.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sunusav_core::domain::payout::{NodePubkey, PayoutDestination};
use sunusav_core::services::AcceptedInvoice;
use sunusav_core::{GroupId, IdempotencyKey, MemberId};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Identity;
use crate::state::AppState;

/// The body of `PUT /members/{member}/payout-destination`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetDestination {
    /// The node to pay by keysend: its public key, 66 hex characters.
    pub keysend: String,
}

/// A member's destination, as answered by the API.
#[derive(Clone, Debug, Serialize)]
pub struct DestinationBody {
    member: MemberId,
    /// The keysend node, or null when none is set.
    keysend: Option<NodePubkey>,
    /// The payouts that waited for a destination and are queued now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    queued_payouts: Vec<IdempotencyKey>,
}

/// The body of `POST /groups/{id}/payout-invoice`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitInvoice {
    /// A BOLT 11 invoice: amount-less or the payout amount, unexpired, for
    /// this node's network.
    pub bolt11: String,
}

fn body(member: MemberId, destination: Option<PayoutDestination>, queued: Vec<IdempotencyKey>) -> DestinationBody {
    let keysend = match destination {
        Some(PayoutDestination::Keysend(node)) => Some(node),
        _ => None,
    };
    DestinationBody { member, keysend, queued_payouts: queued }
}

/// `PUT /members/{member}/payout-destination` → the destination, and the
/// member's waiting payouts now queued; 422 `invalid_node_key` for a key
/// that is not a point of the curve.
pub async fn set(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(member): ApiPath<MemberId>,
    ApiJson(request): ApiJson<SetDestination>,
) -> Result<Json<DestinationBody>, ApiError> {
    let node: NodePubkey = request.keysend.parse().map_err(sunusav_core::services::ServiceError::from)?;
    let destination = Some(PayoutDestination::Keysend(node));
    let queued = state.inner.tontine.acting_as(caller).set_payout_destination(member, destination).await?;
    Ok(Json(body(member, destination, queued)))
}

/// `GET /members/{member}/payout-destination` → the destination (`keysend`
/// null when none is set).
pub async fn show(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(member): ApiPath<MemberId>,
) -> Result<Json<DestinationBody>, ApiError> {
    let destination = state.inner.tontine.acting_as(caller).payout_destination(member).await?;
    Ok(Json(body(member, destination, Vec::new())))
}

/// `DELETE /members/{member}/payout-destination` → 204; payouts due to the
/// member then wait for a destination.
pub async fn clear(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(member): ApiPath<MemberId>,
) -> Result<StatusCode, ApiError> {
    state.inner.tontine.acting_as(caller).set_payout_destination(member, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /groups/{id}/payout-invoice` → 201 with the cycle, payment hash and
/// amount; 422 with the reason (`invalid_invoice`, `wrong_network`,
/// `wrong_amount`, `invoice_expired`); 409 `not_payable` when the group has
/// no pot to come or the invoice was submitted before.
pub async fn submit_invoice(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(id): ApiPath<GroupId>,
    ApiJson(request): ApiJson<SubmitInvoice>,
) -> Result<(StatusCode, Json<AcceptedInvoice>), ApiError> {
    let accepted = state.inner.tontine.acting_as(caller).submit_payout_invoice(id, &request.bolt11).await?;
    Ok((StatusCode::CREATED, Json(accepted)))
}
