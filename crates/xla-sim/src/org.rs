//! A seeded organisation: employees, assignment groups, business services,
//! SLA definitions, ServiceNow tickets with their `task_sla` rows, and
//! HappySignals survey responses on resolved tickets.
//!
//! The same [`OrgSpec`] always gives the same [`Org`] (ChaCha8 seeded from
//! `seed`), so tests can compute the truth and compare a sync against it.
//! Two patterns are planted for the scorers to find:
//!
//! - [`WATERMELON_SERVICE`] meets its SLAs (at least [`WATERMELON_MIN_SLA_MET`]
//!   of its `task_sla` rows are not breached) while its users are unhappy
//!   (most scores are 0-6, happiness below zero);
//! - [`REASSIGNMENT_HOTSPOT_GROUP`] passes tickets around (mean reassignment
//!   count at least [`HOTSPOT_MIN_MEAN_REASSIGNMENTS`]) and its users report
//!   high lost time.
//!
//! Every other service and group looks normal: happiness around +40..+70 and
//! 5-15 % breached SLAs.

use rand::rngs::ChaCha8Rng;
use rand::{Rng, RngExt, SeedableRng};
use serde::Serialize;

/// The service whose SLAs are green while its users are unhappy.
pub const WATERMELON_SERVICE: &str = "VPN";
/// Share of the watermelon service's `task_sla` rows that are not breached, at least.
pub const WATERMELON_MIN_SLA_MET: f64 = 0.95;
/// The group that reassigns tickets far more than the others.
pub const REASSIGNMENT_HOTSPOT_GROUP: &str = "Network Operations";
/// Mean reassignment count of the hotspot group's tickets, at least.
pub const HOTSPOT_MIN_MEAN_REASSIGNMENTS: f64 = 3.0;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrgSpec {
    /// Seed of the generator: the same seed gives the same organisation.
    pub seed: u64,
    /// Number of tickets, incidents and requested items together.
    pub tickets: usize,
    /// Start of the period, unix milliseconds UTC.
    pub start: i64,
    /// Length of the period in days; "now" is its end.
    pub days: u32,
}

/// A generated organisation: plain data, indices point into its vectors.
#[derive(Debug, Clone, Serialize)]
pub struct Org {
    /// The spec it was generated from.
    pub spec: OrgSpec,
    /// Employees (`sys_user`): callers, requesters and agents.
    pub employees: Vec<Employee>,
    /// Assignment groups (`sys_user_group`).
    pub groups: Vec<Group>,
    /// Business services (`cmdb_ci_service`).
    pub services: Vec<Service>,
    /// SLA definitions (`contract_sla`).
    pub sla_definitions: Vec<SlaDefinition>,
    /// Incidents, ordered by `opened_at` (numbers follow that order).
    pub incidents: Vec<Incident>,
    /// Requested items (`sc_req_item`), ordered by `opened_at`.
    pub requests: Vec<RequestItem>,
    /// SLA rows attached to tickets (`task_sla`).
    pub slas: Vec<TaskSla>,
    /// HappySignals survey responses, ordered by `created`.
    pub responses: Vec<SurveyResponse>,
}

/// An employee (`sys_user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Employee {
    /// 32 lowercase hex digits.
    pub sys_id: String,
    /// Login name, e.g. `aino.virtanen`.
    pub user_name: String,
    /// Display name, e.g. `Aino Virtanen`.
    pub name: String,
    /// Country name.
    pub country: &'static str,
}

/// An assignment group (`sys_user_group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// 32 lowercase hex digits.
    pub sys_id: String,
    /// Name, e.g. `Service Desk`.
    pub name: &'static str,
}

/// A business service (`cmdb_ci_service`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// 32 lowercase hex digits.
    pub sys_id: String,
    /// Name, e.g. `VPN`.
    pub name: &'static str,
}

/// An SLA definition (`contract_sla`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaDefinition {
    /// 32 lowercase hex digits.
    pub sys_id: String,
    /// Name, e.g. `P1 resolution 4h`.
    pub name: &'static str,
    /// Target duration in milliseconds.
    pub duration_ms: i64,
    /// Table it applies to: `incident` or `sc_req_item`.
    pub collection: &'static str,
}

/// Which table a ticket lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TicketKind {
    /// `incident`.
    Incident,
    /// `sc_req_item`.
    Request,
}

/// A ticket by table and index into [`Org::incidents`] or [`Org::requests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TicketRef {
    /// The table.
    pub kind: TicketKind,
    /// Index into the table's vector.
    pub index: usize,
}

/// An incident, with the fields of ServiceNow's `incident` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// 32 lowercase hex digits.
    pub sys_id: String,
    /// `INC0010000` onwards, in `opened_at` order.
    pub number: String,
    /// Short description.
    pub short_description: &'static str,
    /// Unix ms, whole seconds.
    pub opened_at: i64,
    /// Unix ms, whole seconds; set on resolved and closed incidents.
    pub resolved_at: Option<i64>,
    /// Unix ms, whole seconds; set on closed and canceled incidents.
    pub closed_at: Option<i64>,
    /// 1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed, 8 Canceled.
    pub state: u8,
    /// 1 Critical .. 5 Planning, from impact and urgency.
    pub priority: u8,
    /// 1 High .. 3 Low.
    pub impact: u8,
    /// 1 High .. 3 Low.
    pub urgency: u8,
    /// Index into [`Org::groups`].
    pub assignment_group: usize,
    /// Index into [`Org::employees`].
    pub assigned_to: Option<usize>,
    /// Times the ticket moved between groups.
    pub reassignment_count: u32,
    /// Times the ticket was reopened.
    pub reopen_count: u32,
    /// e.g. `network`.
    pub category: &'static str,
    /// e.g. `vpn`.
    pub subcategory: &'static str,
    /// Index into [`Org::employees`].
    pub caller: usize,
    /// phone, email, self-service, chat, walk-in, virtual_agent.
    pub contact_type: &'static str,
    /// Index into [`Org::services`].
    pub business_service: usize,
    /// Set when resolved, e.g. `Solved (Permanently)`.
    pub close_code: Option<&'static str>,
    /// Legacy flag; disagrees with `task_sla.has_breached` now and then, as in real instances.
    pub made_sla: bool,
    /// Unix ms.
    pub sys_created_on: i64,
    /// Unix ms, at or after every other timestamp of the record.
    pub sys_updated_on: i64,
    /// Number of updates.
    pub sys_mod_count: u32,
}

/// A requested item, with the fields of ServiceNow's `sc_req_item` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestItem {
    /// 32 lowercase hex digits.
    pub sys_id: String,
    /// `RITM0010000` onwards, in `opened_at` order.
    pub number: String,
    /// Parent request number, `REQ0010000` onwards.
    pub request: String,
    /// Catalog item name.
    pub cat_item: &'static str,
    /// Index into [`Org::employees`].
    pub requested_for: usize,
    /// request_approved, fulfillment, complete, Request Cancelled.
    pub stage: &'static str,
    /// 1 Open, 2 Work in Progress, 3 Closed Complete, 4 Closed Incomplete.
    pub state: u8,
    /// 1-5.
    pub priority: u8,
    /// Unix ms, whole seconds.
    pub opened_at: i64,
    /// Unix ms, whole seconds; set on closed items.
    pub closed_at: Option<i64>,
    /// Index into [`Org::groups`].
    pub assignment_group: usize,
    /// Index into [`Org::employees`].
    pub assigned_to: Option<usize>,
    /// Times the item moved between groups.
    pub reassignment_count: u32,
    /// Index into [`Org::services`].
    pub business_service: usize,
    /// phone, email, self-service, chat, walk-in, virtual_agent.
    pub contact_type: &'static str,
    /// Legacy flag.
    pub made_sla: bool,
    /// Unix ms.
    pub sys_created_on: i64,
    /// Unix ms, at or after every other timestamp of the record.
    pub sys_updated_on: i64,
    /// Number of updates.
    pub sys_mod_count: u32,
}

/// One SLA attached to a ticket (`task_sla`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSla {
    /// 32 lowercase hex digits.
    pub sys_id: String,
    /// The ticket's sys_id.
    pub task: String,
    /// The ticket by table and index.
    pub ticket: TicketRef,
    /// Index into [`Org::sla_definitions`].
    pub sla: usize,
    /// completed, breached, in_progress, cancelled, paused.
    pub stage: &'static str,
    /// Whether the target was missed: the trustworthy flag.
    pub has_breached: bool,
    /// Unix ms.
    pub start_time: i64,
    /// Unix ms; set when the SLA stopped.
    pub end_time: Option<i64>,
    /// Unix ms: start plus the target.
    pub planned_end_time: i64,
    /// Elapsed share of the target in business time, in percent (24x7 here).
    pub business_percentage: f64,
    /// Elapsed share of the target, in percent.
    pub percentage: f64,
    /// Unix ms.
    pub sys_created_on: i64,
    /// Unix ms.
    pub sys_updated_on: i64,
}

/// A HappySignals survey response on a resolved ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyResponse {
    /// `hs-00000001` onwards, in `created` order.
    pub id: String,
    /// The ticket's number, e.g. `INC0012345`.
    pub ticket_number: String,
    /// `Incident` or `Request`.
    pub ticket_type: &'static str,
    /// The ticket by table and index (not a HappySignals field: for tests).
    pub ticket: TicketRef,
    /// 0-10.
    pub score: u8,
    /// Perceived lost time; about 70 % answer.
    pub lost_time_minutes: Option<u32>,
    /// Factors of the score's band (positive 9-10, neutral 7-8, negative 0-6).
    pub factors: Vec<String>,
    /// Portal, Phone, Email, Chat, Walk-in, Virtual agent.
    pub channel: &'static str,
    /// The end user's country.
    pub country: &'static str,
    /// ESM area; always `IT` here.
    pub esm_area: &'static str,
    /// The ticket's category.
    pub category: &'static str,
    /// Unix ms, after the resolution.
    pub created: i64,
}

const GROUPS: [&str; 12] = [
    "Service Desk",
    "Network Operations",
    "Field Services",
    "Identity & Access",
    "Messaging",
    "Collaboration",
    "SAP Support",
    "Workplace Services",
    "Application Support",
    "Database Administration",
    "Security Operations",
    "Procurement",
];
const SERVICE_DESK: usize = 0;
const HOTSPOT: usize = 1;

/// A service: name, weight, primary group, category, subcategories, catalog item.
struct Profile {
    name: &'static str,
    weight: u32,
    group: usize,
    category: &'static str,
    subcategories: &'static [&'static str],
    cat_item: &'static str,
    short_description: &'static str,
}

const SERVICES: [Profile; 10] = [
    Profile {
        name: "Email",
        weight: 12,
        group: 4,
        category: "software",
        subcategories: &["email", "outlook"],
        cat_item: "Distribution List",
        short_description: "Cannot send email",
    },
    Profile {
        name: "VPN",
        weight: 10,
        group: HOTSPOT,
        category: "network",
        subcategories: &["vpn"],
        cat_item: "VPN Access",
        short_description: "VPN keeps disconnecting",
    },
    Profile {
        name: "Laptop",
        weight: 16,
        group: 2,
        category: "hardware",
        subcategories: &["laptop", "docking station", "monitor"],
        cat_item: "Standard Laptop",
        short_description: "Laptop is slow",
    },
    Profile {
        name: "Service Portal",
        weight: 8,
        group: 8,
        category: "inquiry",
        subcategories: &["portal"],
        cat_item: "Portal Access",
        short_description: "Portal page does not load",
    },
    Profile {
        name: "Teams",
        weight: 10,
        group: 5,
        category: "software",
        subcategories: &["teams", "audio"],
        cat_item: "Teams Room Setup",
        short_description: "No audio in Teams calls",
    },
    Profile {
        name: "SAP",
        weight: 8,
        group: 6,
        category: "software",
        subcategories: &["sap gui", "authorisation"],
        cat_item: "SAP Role",
        short_description: "SAP transaction fails",
    },
    Profile {
        name: "Wi-Fi",
        weight: 7,
        group: 7,
        category: "network",
        subcategories: &["wireless"],
        cat_item: "Guest Wi-Fi Access",
        short_description: "Wi-Fi drops in meeting room",
    },
    Profile {
        name: "Printing",
        weight: 7,
        group: 7,
        category: "hardware",
        subcategories: &["printer"],
        cat_item: "Printer Toner",
        short_description: "Printer queue stuck",
    },
    Profile {
        name: "Access Management",
        weight: 12,
        group: 3,
        category: "inquiry",
        subcategories: &["password reset", "account locked", "mfa"],
        cat_item: "New Account",
        short_description: "Account locked",
    },
    Profile {
        name: "Mobile Phone",
        weight: 10,
        group: 2,
        category: "hardware",
        subcategories: &["mobile"],
        cat_item: "New Mobile Phone",
        short_description: "Phone does not sync mail",
    },
];

/// Definitions: name, target, table. Indices are used below.
const SLA_DEFINITIONS: [(&str, i64, &str); 6] = [
    ("P1 resolution 4h", 4 * HOUR_MS, "incident"),
    ("P2 resolution 8h", 8 * HOUR_MS, "incident"),
    ("P3 resolution 3 days", 3 * DAY_MS, "incident"),
    ("P4 resolution 5 days", 5 * DAY_MS, "incident"),
    ("Response 1h", HOUR_MS, "incident"),
    ("Request fulfilment 5 days", 5 * DAY_MS, "sc_req_item"),
];
const SLA_RESPONSE: usize = 4;
const SLA_FULFILMENT: usize = 5;

const CONTACT_TYPES: [(&str, u32); 6] = [
    ("self-service", 35),
    ("phone", 25),
    ("email", 20),
    ("chat", 10),
    ("virtual_agent", 6),
    ("walk-in", 4),
];
const COUNTRIES: [(&str, u32); 8] = [
    ("Finland", 25),
    ("Sweden", 15),
    ("Germany", 15),
    ("United Kingdom", 12),
    ("United States", 12),
    ("India", 10),
    ("Poland", 6),
    ("Netherlands", 5),
];
const FIRST_NAMES: [&str; 16] = [
    "Aino", "Eero", "Maria", "Johan", "Lena", "Lukas", "Emma", "Oliver", "Priya", "Arjun", "Zofia", "Jan", "Sanne",
    "Daan", "Olivia", "James",
];
const LAST_NAMES: [&str; 16] = [
    "Virtanen",
    "Korhonen",
    "Andersson",
    "Johansson",
    "Muller",
    "Schmidt",
    "Smith",
    "Jones",
    "Sharma",
    "Patel",
    "Nowak",
    "Kowalski",
    "DeVries",
    "Jansen",
    "Brown",
    "Miller",
];
const CLOSE_CODES: [(&str, u32); 5] = [
    ("Solved (Permanently)", 55),
    ("Solved (Work Around)", 20),
    ("Solved Remotely (Permanently)", 15),
    ("Closed/Resolved by Caller", 7),
    ("Not Solved (Not Reproducible)", 3),
];
const POSITIVE_FACTORS: [&str; 5] = [
    "Service was fast",
    "Service was friendly",
    "Problem was solved",
    "Easy to get help",
    "Got clear instructions",
];
const NEUTRAL_FACTORS: [&str; 4] = [
    "Service was slow",
    "Service was fast",
    "Had to explain several times",
    "Problem was solved",
];
const NEGATIVE_FACTORS: [&str; 5] = [
    "Service was slow",
    "Problem was not solved",
    "Had to explain several times",
    "Was not kept informed",
    "Was passed between teams",
];
/// Agents per group: the first `GROUPS.len() * AGENTS_PER_GROUP` employees are IT staff.
const AGENTS_PER_GROUP: usize = 6;

/// What the first pass decided about a ticket that the second pass needs.
struct Plan {
    /// Resolution (or fulfilment) SLA missed.
    resolution_breached: bool,
    /// Response SLA attached, and whether it was missed.
    response: Option<bool>,
    /// When the response SLA stopped (first touch).
    responded_at: Option<i64>,
}

/// Generates the organisation described by `spec`.
pub fn generate(spec: &OrgSpec) -> Org {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let groups = GROUPS
        .iter()
        .map(|name| Group {
            sys_id: sys_id(&mut rng),
            name,
        })
        .collect();
    let services = SERVICES
        .iter()
        .map(|p| Service {
            sys_id: sys_id(&mut rng),
            name: p.name,
        })
        .collect();
    let sla_definitions = SLA_DEFINITIONS
        .iter()
        .map(|&(name, duration_ms, collection)| SlaDefinition {
            sys_id: sys_id(&mut rng),
            name,
            duration_ms,
            collection,
        })
        .collect();
    let employees = employees(&mut rng, (spec.tickets / 5).clamp(100, 50_000));

    let mut tickets = TicketGen {
        rng,
        spec: *spec,
        employees: employees.len(),
        end: spec.start + i64::from(spec.days.max(1)) * DAY_MS,
    };
    let mut incidents = Vec::with_capacity(spec.tickets * 4 / 5 + 16);
    let mut requests = Vec::with_capacity(spec.tickets / 5 + 16);
    for _ in 0..spec.tickets {
        if tickets.rng.random_bool(0.8) {
            incidents.push(tickets.incident());
        } else {
            requests.push(tickets.request());
        }
    }
    incidents.sort_by(|a: &(Incident, Plan), b| (a.0.opened_at, &a.0.sys_id).cmp(&(b.0.opened_at, &b.0.sys_id)));
    requests.sort_by(|a: &(RequestItem, Plan), b| (a.0.opened_at, &a.0.sys_id).cmp(&(b.0.opened_at, &b.0.sys_id)));
    for (i, (incident, _)) in incidents.iter_mut().enumerate() {
        incident.number = format!("INC{:07}", 10_000 + i);
    }
    for (i, (request, _)) in requests.iter_mut().enumerate() {
        request.number = format!("RITM{:07}", 10_000 + i);
        request.request = format!("REQ{:07}", 10_000 + i);
    }

    let mut slas = Vec::with_capacity(spec.tickets * 3 / 2);
    let mut responses = Vec::with_capacity(spec.tickets * 2 / 5);
    for (index, (incident, plan)) in incidents.iter().enumerate() {
        let ticket = TicketRef {
            kind: TicketKind::Incident,
            index,
        };
        tickets.incident_slas(incident, plan, ticket, &mut slas);
        if let Some(response) = tickets.incident_response(incident, plan, ticket, &employees) {
            responses.push(response);
        }
    }
    for (index, (request, plan)) in requests.iter().enumerate() {
        let ticket = TicketRef {
            kind: TicketKind::Request,
            index,
        };
        tickets.request_sla(request, plan, ticket, &mut slas);
        if let Some(response) = tickets.request_response(request, plan, ticket, &employees) {
            responses.push(response);
        }
    }
    responses.sort_by(|a, b| (a.created, &a.ticket_number).cmp(&(b.created, &b.ticket_number)));
    for (i, response) in responses.iter_mut().enumerate() {
        response.id = format!("hs-{:08}", i + 1);
    }

    Org {
        spec: *spec,
        employees,
        groups,
        services,
        sla_definitions,
        incidents: incidents.into_iter().map(|(t, _)| t).collect(),
        requests: requests.into_iter().map(|(t, _)| t).collect(),
        slas,
        responses,
    }
}

fn sys_id(rng: &mut ChaCha8Rng) -> String {
    format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
}

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for &(item, weight) in table {
        if roll < weight {
            return item;
        }
        roll -= weight;
    }
    table[table.len() - 1].0
}

/// A count with the given mean (geometric), capped.
fn geometric(rng: &mut ChaCha8Rng, mean: f64, cap: u32) -> u32 {
    let p = mean / (1.0 + mean);
    let mut n = 0;
    while n < cap && rng.random_bool(p) {
        n += 1;
    }
    n
}

fn whole_seconds(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000
}

fn employees(rng: &mut ChaCha8Rng, count: usize) -> Vec<Employee> {
    let (firsts, lasts) = (FIRST_NAMES.len(), LAST_NAMES.len());
    (0..count)
        .map(|i| {
            let first = FIRST_NAMES[i % firsts];
            let last = LAST_NAMES[(i / firsts) % lasts];
            let round = i / (firsts * lasts);
            let user_name = match round {
                0 => format!("{}.{}", first.to_lowercase(), last.to_lowercase()),
                n => format!("{}.{}{}", first.to_lowercase(), last.to_lowercase(), n + 1),
            };
            Employee {
                sys_id: sys_id(rng),
                user_name,
                name: format!("{first} {last}"),
                country: weighted(rng, &COUNTRIES),
            }
        })
        .collect()
}

struct TicketGen {
    rng: ChaCha8Rng,
    spec: OrgSpec,
    employees: usize,
    /// "Now": the end of the period.
    end: i64,
}

impl TicketGen {
    fn service(&mut self) -> usize {
        let total: u32 = SERVICES.iter().map(|p| p.weight).sum();
        let mut roll = self.rng.random_range(0..total);
        for (i, profile) in SERVICES.iter().enumerate() {
            if roll < profile.weight {
                return i;
            }
            roll -= profile.weight;
        }
        SERVICES.len() - 1
    }

    /// Primary group most of the time, the service desk often, anyone now and then.
    fn group(&mut self, service: usize) -> usize {
        let roll = self.rng.random::<f64>();
        if roll < 0.6 {
            SERVICES[service].group
        } else if roll < 0.88 {
            SERVICE_DESK
        } else {
            self.rng.random_range(0..GROUPS.len())
        }
    }

    fn agent(&mut self, group: usize) -> usize {
        (group * AGENTS_PER_GROUP + self.rng.random_range(0..AGENTS_PER_GROUP)) % self.employees
    }

    fn customer(&mut self) -> usize {
        let staff = (GROUPS.len() * AGENTS_PER_GROUP).min(self.employees - 1);
        self.rng.random_range(staff..self.employees)
    }

    fn reassignments(&mut self, group: usize) -> u32 {
        if group == HOTSPOT {
            2 + geometric(&mut self.rng, 1.6, 15)
        } else {
            geometric(&mut self.rng, 0.45, 10)
        }
    }

    /// Chance that a ticket's SLA is missed: low for the watermelon.
    fn breach_chance(&self, service: usize, group: usize) -> f64 {
        if SERVICES[service].name == WATERMELON_SERVICE {
            0.012
        } else if group == HOTSPOT {
            0.12
        } else {
            0.09
        }
    }

    /// Opening time and resolution (or closing) time for a ticket with the given target.
    ///
    /// Open tickets are recent, so their SLA state agrees with the breach draw.
    fn times(&mut self, target: i64, breached: bool, done: bool) -> (i64, i64) {
        let factor = if breached {
            self.rng.random_range(1.05..2.5)
        } else {
            self.rng.random_range(0.05..0.95)
        };
        let took = (target as f64 * factor) as i64;
        let span = self.end - self.spec.start;
        let opened = if done {
            self.spec.start + self.rng.random_range(0..span.max(1))
        } else {
            (self.end - took).max(self.spec.start)
        };
        (whole_seconds(opened), whole_seconds(opened + took))
    }

    fn incident(&mut self) -> (Incident, Plan) {
        let service = self.service();
        let group = self.group(service);
        let impact = weighted(&mut self.rng, &[(1u8, 10), (2, 35), (3, 55)]);
        let urgency = weighted(&mut self.rng, &[(1u8, 12), (2, 38), (3, 50)]);
        let priority = (impact + urgency - 1).clamp(1, 5);
        let target = SLA_DEFINITIONS[resolution_sla(priority)].1;
        let breach_chance = self.breach_chance(service, group);
        let resolution_breached = self.rng.random_bool(breach_chance);
        let state = weighted(&mut self.rng, &[(7u8, 88), (8, 2), (1, 2), (2, 6), (3, 2)]);
        let done = matches!(state, 6..=8);
        let (opened_at, resolution) = self.times(target, resolution_breached, done);
        let mut state = state;
        let (mut resolved_at, mut closed_at) = (None, None);
        match state {
            7 => {
                resolved_at = Some(resolution);
                let closing = whole_seconds(resolution + 3 * DAY_MS + self.rng.random_range(0..HOUR_MS));
                if closing > self.end {
                    state = 6;
                } else {
                    closed_at = Some(closing);
                }
            }
            8 => {
                closed_at = Some(whole_seconds(
                    opened_at + self.rng.random_range(HOUR_MS / 12..4 * HOUR_MS),
                ))
            }
            _ => {}
        }
        let response = (priority <= 3).then(|| self.rng.random_bool(breach_chance));
        let responded_at = response.map(|missed| {
            let factor = if missed {
                self.rng.random_range(1.05..3.0)
            } else {
                self.rng.random_range(0.05..0.95)
            };
            whole_seconds(opened_at + (HOUR_MS as f64 * factor) as i64)
        });
        let reassignment_count = self.reassignments(group);
        let reopen_chance = if group == HOTSPOT { 0.10 } else { 0.04 };
        let reopen_count = if resolved_at.is_some() && self.rng.random_bool(reopen_chance) {
            1 + u32::from(self.rng.random_bool(0.2))
        } else {
            0
        };
        let profile = &SERVICES[service];
        let subcategory = profile.subcategories[self.rng.random_range(0..profile.subcategories.len())];
        let assigned_to = (state != 1).then(|| self.agent(group));
        let caller = self.customer();
        let contact_type = weighted(&mut self.rng, &CONTACT_TYPES);
        let close_code = resolved_at.map(|_| weighted(&mut self.rng, &CLOSE_CODES));
        let made_sla = !resolution_breached ^ self.rng.random_bool(0.03);
        let latest = [Some(opened_at), resolved_at, closed_at, responded_at]
            .into_iter()
            .flatten()
            .max();
        let sys_updated_on = whole_seconds(latest.unwrap_or(opened_at) + self.rng.random_range(0..600_000));
        let sys_mod_count = 1 + 2 * reassignment_count + 3 * reopen_count + self.rng.random_range(1..6);
        let sys_id = sys_id(&mut self.rng);
        let incident = Incident {
            sys_id,
            number: String::new(),
            short_description: profile.short_description,
            opened_at,
            resolved_at,
            closed_at,
            state,
            priority,
            impact,
            urgency,
            assignment_group: group,
            assigned_to,
            reassignment_count,
            reopen_count,
            category: profile.category,
            subcategory,
            caller,
            contact_type,
            business_service: service,
            close_code,
            made_sla,
            sys_created_on: opened_at,
            sys_updated_on,
            sys_mod_count,
        };
        let plan = Plan {
            resolution_breached,
            response,
            responded_at,
        };
        (incident, plan)
    }

    fn request(&mut self) -> (RequestItem, Plan) {
        let service = self.service();
        let group = if self.rng.random_bool(0.3) {
            11 // Procurement fulfils a share of everything.
        } else {
            self.group(service)
        };
        let resolution_breached = self.rng.random_bool(self.breach_chance(service, group));
        let (state, stage) = weighted(
            &mut self.rng,
            &[
                ((3u8, "complete"), 86),
                ((4, "Request Cancelled"), 4),
                ((1, "request_approved"), 3),
                ((2, "fulfillment"), 7),
            ],
        );
        let done = state >= 3;
        let (opened_at, closing) = self.times(SLA_DEFINITIONS[SLA_FULFILMENT].1, resolution_breached, done);
        let closed_at = done.then_some(closing);
        let reassignment_count = self.reassignments(group);
        let latest = closed_at.unwrap_or(opened_at);
        let sys_updated_on = whole_seconds(latest + self.rng.random_range(0..600_000));
        let requested_for = self.customer();
        let contact_type = weighted(&mut self.rng, &CONTACT_TYPES[..3]);
        let assigned_to = (state != 1).then(|| self.agent(group));
        let priority = weighted(&mut self.rng, &[(3u8, 20), (4, 80)]);
        let made_sla = !resolution_breached ^ self.rng.random_bool(0.03);
        let sys_mod_count = 2 + 2 * reassignment_count + self.rng.random_range(1..4);
        let item = RequestItem {
            sys_id: sys_id(&mut self.rng),
            number: String::new(),
            request: String::new(),
            cat_item: SERVICES[service].cat_item,
            requested_for,
            stage,
            state,
            priority,
            opened_at,
            closed_at,
            assignment_group: group,
            assigned_to,
            reassignment_count,
            business_service: service,
            contact_type,
            made_sla,
            sys_created_on: opened_at,
            sys_updated_on,
            sys_mod_count,
        };
        let plan = Plan {
            resolution_breached,
            response: None,
            responded_at: None,
        };
        (item, plan)
    }

    /// One `task_sla` row; `stopped` is when it ended, if it did.
    #[allow(clippy::too_many_arguments)]
    fn sla_row(
        &mut self,
        ticket: TicketRef,
        task: &str,
        sla: usize,
        start: i64,
        stopped: Option<i64>,
        breached: bool,
        stage_open: &'static str,
        cancelled: bool,
    ) -> TaskSla {
        let target = SLA_DEFINITIONS[sla].1;
        let planned_end_time = start + target;
        let until = stopped.unwrap_or(self.end);
        let percentage = ((until - start) as f64 / target as f64 * 100.0 * 100.0).round() / 100.0;
        let stage = match (cancelled, stopped, breached) {
            (true, ..) => "cancelled",
            (false, Some(_), _) => "completed",
            (false, None, true) => "breached",
            (false, None, false) => stage_open,
        };
        let updated = stopped
            .unwrap_or(start)
            .max(if breached { planned_end_time } else { start });
        TaskSla {
            sys_id: sys_id(&mut self.rng),
            task: task.to_string(),
            ticket,
            sla,
            stage,
            has_breached: breached && !cancelled,
            start_time: start,
            end_time: stopped,
            planned_end_time,
            business_percentage: percentage,
            percentage,
            sys_created_on: start,
            sys_updated_on: whole_seconds(updated + self.rng.random_range(0..60_000)),
        }
    }

    fn incident_slas(&mut self, incident: &Incident, plan: &Plan, ticket: TicketRef, out: &mut Vec<TaskSla>) {
        let cancelled = incident.state == 8;
        let stopped = incident.resolved_at.or(incident.closed_at);
        let open_stage = if incident.state == 3 { "paused" } else { "in_progress" };
        let sla = resolution_sla(incident.priority);
        let row = self.sla_row(
            ticket,
            &incident.sys_id,
            sla,
            incident.opened_at,
            stopped,
            plan.resolution_breached,
            open_stage,
            cancelled,
        );
        out.push(row);
        if let (Some(missed), Some(at)) = (plan.response, plan.responded_at) {
            let stopped = stopped.map(|s| s.min(at)).or(Some(at));
            let row = self.sla_row(
                ticket,
                &incident.sys_id,
                SLA_RESPONSE,
                incident.opened_at,
                stopped,
                missed,
                "in_progress",
                cancelled,
            );
            out.push(row);
        }
    }

    fn request_sla(&mut self, request: &RequestItem, plan: &Plan, ticket: TicketRef, out: &mut Vec<TaskSla>) {
        let row = self.sla_row(
            ticket,
            &request.sys_id,
            SLA_FULFILMENT,
            request.opened_at,
            request.closed_at,
            plan.resolution_breached,
            "in_progress",
            request.state == 4,
        );
        out.push(row);
    }

    /// Happiness target in points for a ticket, before the draw.
    fn happiness(&self, service: usize, reassignments: u32, reopens: u32, breached: bool, base: f64) -> f64 {
        let base = if SERVICES[service].name == WATERMELON_SERVICE {
            -42.0
        } else {
            base
        };
        base - 7.0 * f64::from(reassignments.min(8)) - 12.0 * f64::from(reopens) - if breached { 15.0 } else { 0.0 }
    }

    fn score(&mut self, happiness: f64) -> u8 {
        // 20 % neutral; positive minus negative is the happiness target.
        let positive = ((0.8 + happiness / 100.0) / 2.0).clamp(0.03, 0.77);
        let roll = self.rng.random::<f64>();
        if roll < positive {
            weighted(&mut self.rng, &[(10u8, 45), (9, 55)])
        } else if roll < positive + 0.2 {
            weighted(&mut self.rng, &[(8u8, 60), (7, 40)])
        } else {
            weighted(
                &mut self.rng,
                &[(0u8, 4), (1, 3), (2, 4), (3, 6), (4, 8), (5, 12), (6, 14)],
            )
        }
    }

    fn lost_time(&mut self, score: u8, reassignments: u32, group: usize, scale: f64) -> Option<u32> {
        if !self.rng.random_bool(0.7) {
            return None;
        }
        let band = match score {
            9..=10 => 30.0,
            7..=8 => 90.0,
            _ => 200.0,
        };
        let hotspot = if group == HOTSPOT { 1.6 } else { 1.0 };
        let mean = (band + 106.0 * f64::from(reassignments)) * hotspot * scale;
        // Exponential draw with a heavy tail: a few tickets carry most of the lost time.
        let u: f64 = self.rng.random_range(1e-9..1.0);
        let tail = if self.rng.random_bool(0.13) { 4.0 } else { 0.55 };
        Some((-u.ln() * mean * tail).round().min(100_000.0) as u32)
    }

    fn factors(&mut self, score: u8, reassignments: u32) -> Vec<String> {
        let pool: &[&str] = match score {
            9..=10 => &POSITIVE_FACTORS,
            7..=8 => &NEUTRAL_FACTORS,
            _ => &NEGATIVE_FACTORS,
        };
        let count = self.rng.random_range(1..=3usize);
        let mut chosen: Vec<String> = Vec::with_capacity(count + 1);
        if score <= 6 && reassignments >= 2 {
            chosen.push("Was passed between teams".to_string());
        }
        while chosen.len() < count {
            let factor = pool[self.rng.random_range(0..pool.len())];
            if !chosen.iter().any(|c| c == factor) {
                chosen.push(factor.to_string());
            }
        }
        chosen
    }

    fn incident_response(
        &mut self,
        incident: &Incident,
        plan: &Plan,
        ticket: TicketRef,
        employees: &[Employee],
    ) -> Option<SurveyResponse> {
        let resolved = incident.resolved_at?;
        if !self.rng.random_bool(0.35) {
            return None;
        }
        let breached = plan.resolution_breached || plan.response == Some(true);
        let happiness = self.happiness(
            incident.business_service,
            incident.reassignment_count,
            incident.reopen_count,
            breached,
            64.0,
        );
        let score = self.score(happiness);
        Some(SurveyResponse {
            id: String::new(),
            ticket_number: incident.number.clone(),
            ticket_type: "Incident",
            ticket,
            score,
            lost_time_minutes: self.lost_time(score, incident.reassignment_count, incident.assignment_group, 1.0),
            factors: self.factors(score, incident.reassignment_count),
            channel: channel(incident.contact_type),
            country: employees[incident.caller].country,
            esm_area: "IT",
            category: incident.category,
            created: whole_seconds(resolved + self.rng.random_range(120_000..2 * DAY_MS)),
        })
    }

    fn request_response(
        &mut self,
        request: &RequestItem,
        plan: &Plan,
        ticket: TicketRef,
        employees: &[Employee],
    ) -> Option<SurveyResponse> {
        let closed = request.closed_at.filter(|_| request.state == 3)?;
        if !self.rng.random_bool(0.35) {
            return None;
        }
        let happiness = self.happiness(
            request.business_service,
            request.reassignment_count,
            0,
            plan.resolution_breached,
            72.0,
        );
        let score = self.score(happiness);
        Some(SurveyResponse {
            id: String::new(),
            ticket_number: request.number.clone(),
            ticket_type: "Request",
            ticket,
            score,
            lost_time_minutes: self.lost_time(score, request.reassignment_count, request.assignment_group, 0.8),
            factors: self.factors(score, request.reassignment_count),
            channel: channel(request.contact_type),
            country: employees[request.requested_for].country,
            esm_area: "IT",
            category: SERVICES[request.business_service].category,
            created: whole_seconds(closed + self.rng.random_range(120_000..2 * DAY_MS)),
        })
    }
}

fn resolution_sla(priority: u8) -> usize {
    match priority {
        1 => 0,
        2 => 1,
        3 => 2,
        _ => 3,
    }
}

/// HappySignals channel names for ServiceNow contact types.
fn channel(contact_type: &str) -> &'static str {
    match contact_type {
        "phone" => "Phone",
        "email" => "Email",
        "chat" => "Chat",
        "walk-in" => "Walk-in",
        "virtual_agent" => "Virtual agent",
        _ => "Portal",
    }
}

impl Org {
    /// The ticket's sys_id.
    pub fn ticket_sys_id(&self, ticket: TicketRef) -> &str {
        match ticket.kind {
            TicketKind::Incident => &self.incidents[ticket.index].sys_id,
            TicketKind::Request => &self.requests[ticket.index].sys_id,
        }
    }

    /// The ticket's business service index.
    pub fn ticket_service(&self, ticket: TicketRef) -> usize {
        match ticket.kind {
            TicketKind::Incident => self.incidents[ticket.index].business_service,
            TicketKind::Request => self.requests[ticket.index].business_service,
        }
    }

    /// Index of the service with this name.
    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// Index of the group with this name.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }
}

/// Happiness of a set of scores: % of 9-10 minus % of 0-6, from -100 to +100.
pub fn happiness<I: IntoIterator<Item = u8>>(scores: I) -> Option<f64> {
    let (mut positive, mut negative, mut total) = (0usize, 0usize, 0usize);
    for score in scores {
        total += 1;
        match score {
            9..=10 => positive += 1,
            0..=6 => negative += 1,
            _ => {}
        }
    }
    (total > 0).then(|| (positive as f64 - negative as f64) / total as f64 * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64, tickets: usize) -> OrgSpec {
        OrgSpec {
            seed,
            tickets,
            start: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            days: 90,
        }
    }

    #[test]
    fn same_seed_same_org() {
        let a = serde_json::to_string(&generate(&spec(7, 2_000))).unwrap();
        let b = serde_json::to_string(&generate(&spec(7, 2_000))).unwrap();
        let c = serde_json::to_string(&generate(&spec(8, 2_000))).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn shapes_and_timestamps() {
        let org = generate(&spec(1, 5_000));
        assert_eq!(org.incidents.len() + org.requests.len(), 5_000);
        assert!(org.incidents.len() > 3_700 && org.incidents.len() < 4_300);
        assert_eq!(org.incidents[0].number, "INC0010000");
        assert_eq!(org.requests[0].number, "RITM0010000");
        let done = org.incidents.iter().filter(|i| matches!(i.state, 6 | 7)).count();
        let share = done as f64 / org.incidents.len() as f64;
        assert!(share > 0.85 && share < 0.95, "resolved or closed share {share}");
        for i in &org.incidents {
            assert_eq!(i.sys_id.len(), 32);
            assert!(
                i.sys_id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            assert_eq!(i.opened_at % 1000, 0);
            let latest = [Some(i.opened_at), i.resolved_at, i.closed_at]
                .into_iter()
                .flatten()
                .max()
                .unwrap();
            assert!(i.sys_updated_on >= latest);
            assert!(i.resolved_at.is_none_or(|r| r >= i.opened_at));
        }
        for r in &org.requests {
            assert!(r.sys_updated_on >= r.closed_at.unwrap_or(r.opened_at));
        }
        for s in &org.slas {
            assert_eq!(s.task, org.ticket_sys_id(s.ticket));
        }
        assert!(org.responses.iter().all(|r| r.score <= 10));
    }

    #[test]
    fn planted_watermelon_and_hotspot() {
        let org = generate(&spec(42, 20_000));
        let vpn = org.service_index(WATERMELON_SERVICE).unwrap();
        let vpn_slas: Vec<_> = org
            .slas
            .iter()
            .filter(|s| org.ticket_service(s.ticket) == vpn)
            .collect();
        let met = vpn_slas.iter().filter(|s| !s.has_breached).count() as f64 / vpn_slas.len() as f64;
        assert!(met >= WATERMELON_MIN_SLA_MET, "VPN SLA met {met}");
        let vpn_happiness = happiness(
            org.responses
                .iter()
                .filter(|r| org.ticket_service(r.ticket) == vpn)
                .map(|r| r.score),
        )
        .unwrap();
        assert!(vpn_happiness < 0.0, "VPN happiness {vpn_happiness}");

        for (s, service) in org.services.iter().enumerate().filter(|(s, _)| *s != vpn) {
            let slas: Vec<_> = org.slas.iter().filter(|r| org.ticket_service(r.ticket) == s).collect();
            let breached = slas.iter().filter(|r| r.has_breached).count() as f64 / slas.len() as f64;
            assert!(
                (0.04..=0.16).contains(&breached),
                "{} breached {breached}",
                service.name
            );
            let h = happiness(
                org.responses
                    .iter()
                    .filter(|r| org.ticket_service(r.ticket) == s)
                    .map(|r| r.score),
            )
            .unwrap();
            assert!((30.0..=75.0).contains(&h), "{} happiness {h}", service.name);
        }

        let hot = org.group_index(REASSIGNMENT_HOTSPOT_GROUP).unwrap();
        let counts: Vec<u32> = org
            .incidents
            .iter()
            .filter(|i| i.assignment_group == hot)
            .map(|i| i.reassignment_count)
            .collect();
        let mean = counts.iter().sum::<u32>() as f64 / counts.len() as f64;
        assert!(
            mean >= HOTSPOT_MIN_MEAN_REASSIGNMENTS,
            "hotspot mean reassignments {mean}"
        );
        let lost = |group_is_hot: bool| {
            let values: Vec<u32> = org
                .responses
                .iter()
                .filter(|r| r.ticket.kind == TicketKind::Incident)
                .filter(|r| (org.incidents[r.ticket.index].assignment_group == hot) == group_is_hot)
                .filter_map(|r| r.lost_time_minutes)
                .collect();
            values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64
        };
        assert!(
            lost(true) > 2.0 * lost(false),
            "hotspot lost time {} vs {}",
            lost(true),
            lost(false)
        );
    }
}
