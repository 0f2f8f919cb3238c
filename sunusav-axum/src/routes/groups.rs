//! The group API: create, start, cancel, issue a contribution invoice, read state.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sunusav_core::ports::PaymentAttempt;
use sunusav_core::{Group, GroupId, GroupPolicy, GroupSpec, Invoice, MemberId, Msat};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Identity;
use crate::state::AppState;

/// The body of `POST /groups`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Members in payout order.
    pub members: Vec<MemberId>,
    /// What each member pays per cycle, in millisatoshis.
    pub contribution_msat: u64,
    /// The platform's fee on each pot, in basis points.
    #[serde(default)]
    pub fee_bps: u16,
    /// Whether a member's balance pays their next contribution (default
    /// true); when false, balances wait for an operator to release them.
    #[serde(default = "default_true")]
    pub apply_balance: bool,
    /// The member who organizes the group (starts and cancels it): one of
    /// the members. A member creating a group is its organizer (naming
    /// another is refused); an operator may name one or none.
    #[serde(default)]
    pub organizer: Option<MemberId>,
    /// The group's calendar: `{"first_due_ms", "period": {"days"|"weeks"|"months": n}, "grace_ms"}`;
    /// none for a group that runs at its members' pace.
    #[serde(default)]
    pub schedule: Option<sunusav_core::domain::schedule::Schedule>,
    /// What happens to a member who has not paid at a cycle's grace end
    /// (needs a schedule): `"wait"` (the default) or
    /// `{"fine": {"amount": {"msat": n} | {"bps": n}, "to": "pot" | "organizer"}}`.
    #[serde(default)]
    pub late: sunusav_core::domain::rules::LatePolicy,
    /// Reminders before each cycle is due, as offsets in ms (needs a
    /// schedule): up to 4, each at most 31 days.
    #[serde(default)]
    pub reminders_ms: sunusav_core::domain::rules::Reminders,
    /// How each cycle's beneficiary is chosen: `"fixed"` (the members'
    /// order, the default) or `"draw"` (drawn verifiably, see
    /// `GET /groups/{id}/order`).
    #[serde(default)]
    pub payout_order: sunusav_core::domain::rules::PayoutOrder,
}

const fn default_true() -> bool {
    true
}

/// The body of `POST /groups/{id}/bids`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceBid {
    /// The bidding member.
    pub member: MemberId,
    /// The lowest payout the member accepts for this cycle's pot, in msat.
    pub payout_msat: u64,
}

/// The body of `POST /groups/{id}/invoices`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueInvoice {
    /// The member who will pay.
    pub member: MemberId,
}

/// A group, as answered by the API.
#[derive(Clone, Debug, Serialize)]
pub struct GroupBody {
    id: GroupId,
    status: &'static str,
    cycle: u32,
    cycle_count: u32,
    cycle_status: &'static str,
    members: Vec<MemberId>,
    organizer: Option<MemberId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<sunusav_core::domain::schedule::Schedule>,
    /// When the current cycle is due (unix ms), with a schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_due_ms: Option<u64>,
    /// When the current cycle's grace period ends (unix ms), with a schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_grace_end_ms: Option<u64>,
    contribution_msat: u64,
    fee_bps: u16,
    apply_balance: bool,
    /// `fixed` or `draw`.
    payout_order: sunusav_core::domain::rules::PayoutOrder,
    /// The late policy (`"wait"` for a group without rules).
    late: sunusav_core::domain::rules::LatePolicy,
    /// Reminder offsets before each due time (ms).
    reminders_ms: sunusav_core::domain::rules::Reminders,
    /// The members told late in the current cycle, with what each owes now
    /// (the contribution and their fine).
    late_members: Vec<LateMember>,
    /// An auctioned group: whether the current cycle takes bids, and how
    /// many members bid (the bids themselves are sealed).
    #[serde(skip_serializing_if = "Option::is_none")]
    auction: Option<AuctionBody>,
    beneficiary: Option<MemberId>,
    paid_members: Vec<MemberId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payouts: Option<Vec<PayoutBody>>,
}

/// A group's payout order, as answered by `GET /groups/{id}/order`.
#[derive(Clone, Debug, Serialize)]
pub struct OrderBody {
    /// `fixed` or `draw`.
    order: sunusav_core::domain::rules::PayoutOrder,
    /// The members as listed at creation (the draw's roster).
    roster: Vec<MemberId>,
    /// The beneficiaries known so far, in cycle order: all of them for a
    /// fixed order, those of cycles 1 to the current one for a drawn one.
    beneficiaries: Vec<MemberId>,
    /// A drawn order's proof: the commitment published at start and each
    /// drawn cycle's reveal (`sunusav_core::domain::draw::verify` checks it).
    #[serde(skip_serializing_if = "Option::is_none")]
    proof: Option<sunusav_core::domain::draw::DrawProof>,
}

/// An auctioned group's current cycle, as answered by the API.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AuctionBody {
    /// Whether bids are taken (until the cycle is due).
    open: bool,
    /// How many members bid.
    bidders: usize,
    /// The pot bid on: the contributions less the platform's fee.
    pot_msat: u64,
    /// The lowest bid the rules allow.
    floor_msat: u64,
}

/// A member told late in the current cycle.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LateMember {
    member: MemberId,
    /// The fine owed on top of the contribution (0 under `wait`).
    fine_msat: u64,
    /// What the member owes for the cycle now.
    owed_msat: u64,
}

/// A payout (payment attempt), as answered by the API.
#[derive(Clone, Debug, Serialize)]
pub struct PayoutBody {
    /// `payout` (a cycle's pot) or `refund` (a released balance).
    kind: &'static str,
    /// The attempt's idempotency key.
    key: String,
    cycle: u32,
    beneficiary: MemberId,
    amount_msat: u64,
    fee_msat: u64,
    status: &'static str,
    attempts: u32,
    /// The node's last error: shown to operators only (null for members).
    last_error: Option<String>,
    /// The payment hash it was sent with (fixed before sending).
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_hash: Option<String>,
    /// `keysend` or `invoice`: how it was last sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'static str>,
}

/// An invoice, as answered by the API.
#[derive(Clone, Debug, Serialize)]
pub struct InvoiceBody {
    payment_hash: String,
    bolt11: String,
    amount_msat: u64,
    group: GroupId,
    cycle: u32,
    member: MemberId,
    expires_at_ms: u64,
    state: &'static str,
}

impl GroupBody {
    fn new(group: &Group, attempts: Option<&[PaymentAttempt]>) -> Self {
        Self {
            id: group.id(),
            status: group.status().as_str(),
            cycle: group.cycle(),
            cycle_count: group.cycle_count(),
            cycle_status: group.cycle_status().as_str(),
            members: group.members().to_vec(),
            organizer: group.organizer(),
            schedule: group.schedule(),
            cycle_due_ms: group.cycle_due_ms(),
            cycle_grace_end_ms: group.cycle_grace_end_ms(),
            contribution_msat: group.contribution().get(),
            fee_bps: group.fee_bps(),
            apply_balance: group.policy().apply_balance,
            payout_order: group.policy().order,
            late: group.policy().late,
            reminders_ms: group.policy().reminders_ms,
            late_members: group
                .late()
                .iter()
                .map(|(m, fine)| LateMember { member: *m, fine_msat: fine.get(), owed_msat: group.owed(*m).get() })
                .collect(),
            auction: match group.policy().order {
                sunusav_core::domain::rules::PayoutOrder::Auction(rules) => Some(AuctionBody {
                    open: group.auction_open(),
                    bidders: group.bids().count(),
                    pot_msat: group.auction_pot().get(),
                    floor_msat: rules.floor(group.auction_pot()).get(),
                }),
                _ => None,
            },
            beneficiary: group.beneficiary(),
            paid_members: group.paid().keys().copied().collect(),
            payouts: attempts.map(|a| a.iter().map(PayoutBody::from).collect()),
        }
    }
}

impl From<&PaymentAttempt> for PayoutBody {
    fn from(a: &PaymentAttempt) -> Self {
        Self {
            kind: a.kind.as_str(),
            key: a.key.as_str().to_owned(),
            cycle: a.cycle,
            beneficiary: a.beneficiary,
            amount_msat: a.amount.get(),
            fee_msat: a.fee.get(),
            status: a.status().as_str(),
            attempts: a.attempts(),
            last_error: a.last_error().map(str::to_owned),
            payment_hash: a.payment_hash().map(|h| h.to_hex()),
            route: a.route().map(|r| match r {
                sunusav_core::domain::attempt::AttemptRoute::Keysend(_) => "keysend",
                sunusav_core::domain::attempt::AttemptRoute::Invoice(_) => "invoice",
            }),
        }
    }
}

impl From<Invoice> for InvoiceBody {
    fn from(i: Invoice) -> Self {
        Self {
            payment_hash: i.payment_hash.to_hex(),
            bolt11: i.bolt11,
            amount_msat: i.amount.get(),
            group: i.group,
            cycle: i.cycle,
            member: i.member,
            expires_at_ms: i.expires_at_ms,
            state: i.state.as_str(),
        }
    }
}

/// `POST /groups` → 201 with the group; 422 with the rule's code for invalid input.
pub async fn create(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiJson(body): ApiJson<CreateGroup>,
) -> Result<(StatusCode, Json<GroupBody>), ApiError> {
    // A member who names no organizer organizes the group they create.
    let organizer = match (body.organizer, caller) {
        (None, sunusav_core::Caller::Member(m)) => Some(m),
        (organizer, _) => organizer,
    };
    let spec = GroupSpec {
        contribution: Msat::new(body.contribution_msat),
        fee_bps: body.fee_bps,
        members: body.members,
        policy: GroupPolicy {
            apply_balance: body.apply_balance,
            late: body.late,
            reminders_ms: body.reminders_ms,
            order: body.payout_order,
        },
        organizer,
        schedule: body.schedule,
    };
    let group = state.inner.tontine.acting_as(caller).create_group(spec).await?;
    Ok((StatusCode::CREATED, Json(GroupBody::new(&group, None))))
}

/// `POST /groups/{id}/start` → the group, 409 `invalid_transition` when it cannot start.
pub async fn start(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(id): ApiPath<GroupId>,
) -> Result<Json<GroupBody>, ApiError> {
    let group = state.inner.tontine.acting_as(caller).start_group(id).await?;
    Ok(Json(GroupBody::new(&group, None)))
}

/// `POST /groups/{id}/cancel` → the group, 409 `invalid_transition` when it cannot be cancelled.
pub async fn cancel(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(id): ApiPath<GroupId>,
) -> Result<Json<GroupBody>, ApiError> {
    let group = state.inner.tontine.acting_as(caller).cancel_group(id).await?;
    Ok(Json(GroupBody::new(&group, None)))
}

/// `POST /groups/{id}/invoices` → 201 with the member's open invoice for the
/// current cycle (the same one while it is unexpired); 409 with the rule's code
/// (`not_a_member`, `group_not_active`, `already_contributed`, …).
pub async fn invoice(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(id): ApiPath<GroupId>,
    ApiJson(body): ApiJson<IssueInvoice>,
) -> Result<(StatusCode, Json<InvoiceBody>), ApiError> {
    let invoice = state.inner.tontine.acting_as(caller).issue_invoice(id, body.member).await?;
    Ok((StatusCode::CREATED, Json(invoice.into())))
}

/// `GET /groups/{id}/ledger` → the members' balances and every ledger entry.
pub async fn ledger(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(id): ApiPath<GroupId>,
) -> Result<Json<sunusav_core::services::GroupLedger>, ApiError> {
    Ok(Json(state.inner.tontine.acting_as(caller).group_ledger(id).await?))
}

/// `GET /groups/{id}` → the group's state and its payouts.
pub async fn show(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(id): ApiPath<GroupId>,
) -> Result<Json<GroupBody>, ApiError> {
    let (group, attempts) = state.inner.tontine.acting_as(caller).group_view(id).await?;
    let mut body = GroupBody::new(&group, Some(&attempts));
    if caller != sunusav_core::Caller::Operator {
        // The node's error texts are for operators: they can tell of the
        // platform's node (its channels, its liquidity).
        for payout in body.payouts.iter_mut().flatten() {
            payout.last_error = None;
        }
    }
    Ok(Json(body))
}

/// `GET /groups/{id}/order` → the payout order known so far and, for a
/// drawn order, its proof: the commitment and each drawn cycle's reveal.
pub async fn order(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(id): ApiPath<GroupId>,
) -> Result<Json<OrderBody>, ApiError> {
    let (group, _) = state.inner.tontine.acting_as(caller).group_view(id).await?;
    let order = group.policy().order;
    let beneficiaries = match order {
        sunusav_core::domain::rules::PayoutOrder::Fixed => group.members().to_vec(),
        _ => group.payout_order().to_vec(),
    };
    Ok(Json(OrderBody { order, roster: group.members().to_vec(), beneficiaries, proof: group.draw_proof() }))
}

/// `POST /groups/{id}/bids` → 201 with the bid placed (or replacing the
/// member's earlier one): by the member, for themselves, on an auctioned
/// group's current cycle before it is due; 409 `bidding_closed`,
/// `not_auctioned`; 422 `bid_too_low`, `bid_over_pot`, `not_eligible`.
pub async fn bid(
    State(state): State<AppState>,
    Identity(caller): Identity,
    ApiPath(id): ApiPath<GroupId>,
    ApiJson(body): ApiJson<PlaceBid>,
) -> Result<(StatusCode, Json<sunusav_core::domain::auction::Bid>), ApiError> {
    let placed = state.inner.tontine.acting_as(caller).place_bid(id, body.member, Msat::new(body.payout_msat)).await?;
    Ok((StatusCode::CREATED, Json(placed)))
}
