//! Deterministic workload: every implementation sees byte-identical cases and edits.
//! Cases and edits are generated lazily, per batch, from per-item seeds, so the harness never
//! holds the whole workload in memory (peak RSS stays the implementation's own).

use std::ops::Range;

/// splitmix64: tiny, fast, good enough for a workload generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0x5851_F42D_4C95_7F2D);
        r.next_u64();
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORKLOAD_SEED: u64 = 0x6775_6963_6865_7421; // "guichet!"
/// 2023-11-14T22:13:20Z, the simulated start of the campaign.
pub const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

fn item_rng(stream: u64, index: u32) -> Rng {
    Rng::new(WORKLOAD_SEED ^ stream.wrapping_mul(0xA24B_AED4_963E_E407) ^ ((index as u64) << 20))
}

pub const SERVICES: [&str; 8] = [
    "etat-civil",
    "sante",
    "education",
    "foncier",
    "eau-assainissement",
    "agriculture",
    "protection-sociale",
    "justice",
];
pub const LANGUAGES: [&str; 7] = ["wo", "fr", "ff", "srr", "dyo", "mnk", "snk"];
pub const CHANNELS: [&str; 4] = ["field", "ussd", "sms", "mediator"];
pub const EVENT_KINDS: [&str; 3] = ["note", "visit", "contact"];
const FIRST_NAMES: [&str; 30] = [
    "Ndèye Fatou",
    "Mamadou",
    "Aminata",
    "Cheikh",
    "Fatoumata",
    "Moussa",
    "Aïssatou",
    "Ousmane",
    "Mariama",
    "Ibrahima",
    "Khady",
    "Abdoulaye",
    "Awa",
    "Modou",
    "Coumba",
    "Alioune",
    "Binta",
    "Souleymane",
    "Rokhaya",
    "Babacar",
    "Seynabou",
    "El Hadji",
    "Adama",
    "Penda",
    "Lamine",
    "Yacine",
    "Boubacar",
    "Dieynaba",
    "Samba",
    "Maïmouna",
];
const LAST_NAMES: [&str; 24] = [
    "Diop", "Ndiaye", "Fall", "Sow", "Ba", "Diallo", "Sy", "Faye", "Gueye", "Mbaye", "Sarr",
    "Thiam", "Cissé", "Kane", "Niang", "Touré", "Camara", "Diouf", "Seck", "Badji", "Mané", "Sène",
    "Dème", "Bâ",
];
pub const LOCALITIES: [&str; 40] = [
    "Ndiaganiao",
    "Keur Massar",
    "Thiénaba",
    "Ngaye Mékhé",
    "Koungheul",
    "Dioffior",
    "Fimela",
    "Sokone",
    "Ndoffane",
    "Kahone",
    "Gandiaye",
    "Ngoundiane",
    "Pout",
    "Sébikotane",
    "Diamniadio",
    "Bambey",
    "Ngouye",
    "Darou Mousty",
    "Mbacké",
    "Touba Toul",
    "Kébémer",
    "Louga",
    "Sakal",
    "Mpal",
    "Ross Béthio",
    "Richard-Toll",
    "Podor",
    "Ndioum",
    "Matam",
    "Ourossogui",
    "Bakel",
    "Goudiry",
    "Kédougou",
    "Saraya",
    "Vélingara",
    "Kolda",
    "Sédhiou",
    "Bignona",
    "Oussouye",
    "Ziguinchor",
];
const WORDS: [&str; 64] = [
    "demande",
    "acte",
    "naissance",
    "certificat",
    "dossier",
    "famille",
    "enfant",
    "mère",
    "père",
    "village",
    "chef",
    "quartier",
    "visite",
    "agent",
    "registre",
    "copie",
    "extrait",
    "mariage",
    "terrain",
    "parcelle",
    "puits",
    "forage",
    "école",
    "inscription",
    "bourse",
    "santé",
    "poste",
    "carnet",
    "vaccination",
    "consultation",
    "rendez-vous",
    "transmis",
    "mairie",
    "sous-préfecture",
    "signature",
    "témoin",
    "déclaration",
    "retard",
    "urgent",
    "pièce",
    "identité",
    "photo",
    "paiement",
    "reçu",
    "récépissé",
    "attente",
    "relance",
    "suivi",
    "appel",
    "message",
    "médiateur",
    "wolof",
    "traduction",
    "accompagnée",
    "besoin",
    "aide",
    "semences",
    "récolte",
    "inondation",
    "toiture",
    "le",
    "de",
    "pour",
    "avec",
];

/// Words until the text is at least `lo..hi` bytes long (target drawn uniformly).
fn text(rng: &mut Rng, lo: u64, hi: u64) -> String {
    let target = rng.range(lo, hi) as usize;
    let mut s = String::with_capacity(target + 16);
    while s.len() < target {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(rng.pick_str(&WORDS));
    }
    s
}

#[derive(Debug, Clone)]
pub struct EventSeed {
    pub kind: &'static str,
    pub text: String,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct CaseSeed {
    pub index: u32,
    pub reference: String,
    pub service: &'static str,
    pub requester_phone: String,
    pub requester_name: String,
    pub requester_language: &'static str,
    pub locality: &'static str,
    pub channel: &'static str,
    pub unit: String,
    pub assignee: String,
    pub priority: i64,
    pub description: String,
    pub status: i64,
    pub created_at: i64,
    pub events: Vec<EventSeed>,
}

impl CaseSeed {
    /// The 12 fields as text, in `harness::FIELD_NAMES` order.
    pub fn field_texts(&self) -> [String; 12] {
        [
            self.reference.clone(),
            self.service.to_string(),
            self.requester_phone.clone(),
            self.requester_name.clone(),
            self.requester_language.to_string(),
            self.locality.to_string(),
            self.channel.to_string(),
            self.unit.clone(),
            self.assignee.clone(),
            self.priority.to_string(),
            self.description.clone(),
            self.status.to_string(),
        ]
    }
}

/// Cases `range` of the workload (indexes are global, 0-based).
pub fn seeds(range: Range<u32>) -> Vec<CaseSeed> {
    range.map(seed_case).collect()
}

fn seed_case(index: u32) -> CaseSeed {
    let mut r = item_rng(1, index);
    // bijection on 0..1e10 (multiplier coprime with 10), so references are unique
    let reference = format!(
        "{:010}",
        (index as u64 * 2_654_435_761 + 1_234_567_891) % 10_000_000_000
    );
    let created_at = T0 + index as i64 * 30_000 + r.below(30_000) as i64;
    let mut at = created_at;
    let events = (0..5)
        .map(|_| {
            at += r.range(1, 48) as i64 * HOUR / 4;
            EventSeed {
                kind: r.pick_str(&EVENT_KINDS),
                text: text(&mut r, 60, 120),
                at,
            }
        })
        .collect();
    CaseSeed {
        index,
        reference,
        service: r.pick_str(&SERVICES),
        requester_phone: format!(
            "+2217{}{:07}",
            r.pick(&[0, 5, 6, 7, 8]),
            r.below(10_000_000)
        ),
        requester_name: format!("{} {}", r.pick_str(&FIRST_NAMES), r.pick_str(&LAST_NAMES)),
        requester_language: r.pick_str(&LANGUAGES),
        locality: r.pick_str(&LOCALITIES),
        // Mediated cases name their mediator, a field the references do not model.
        channel: r.pick_str(&CHANNELS[..3]),
        unit: format!("unit-{:02}", r.range(1, 21)),
        assignee: format!("agent-{:03}", r.range(1, 201)),
        priority: r.below(3) as i64,
        description: text(&mut r, 120, 200),
        // New cases start received, assigned or in progress (the workflow).
        status: r.below(3) as i64,
        created_at,
        events,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    Assignee(String),
    Status(i64),
    Priority(i64),
    Description(String),
    Locality(&'static str),
}

impl FieldChange {
    /// Field name, as in `harness::FIELD_NAMES`.
    pub fn name(&self) -> &'static str {
        match self {
            FieldChange::Assignee(_) => "assignee",
            FieldChange::Status(_) => "status",
            FieldChange::Priority(_) => "priority",
            FieldChange::Description(_) => "description",
            FieldChange::Locality(_) => "locality",
        }
    }
    /// New value as text (ints in decimal).
    pub fn text(&self) -> String {
        match self {
            FieldChange::Assignee(s) | FieldChange::Description(s) => s.clone(),
            FieldChange::Status(i) | FieldChange::Priority(i) => i.to_string(),
            FieldChange::Locality(s) => s.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CaseEdit {
    /// Workload index of the edited case.
    pub index: u32,
    /// Simulated wall-clock time of the edit (ms).
    pub at: i64,
    /// Exactly 3 distinct fields.
    pub fields: Vec<FieldChange>,
    /// One new note.
    pub event: EventSeed,
}

impl CaseEdit {
    /// Raw content size: new field values (ints as decimal text) + event text.
    pub fn raw_bytes(&self) -> usize {
        self.fields.iter().map(|f| f.text().len()).sum::<usize>() + self.event.text.len()
    }
}

/// The cases device `device` edits: a random 20% of 0..n, in random order.
pub fn edit_plan(n: u32, device: u32) -> Vec<u32> {
    let mut r = Rng::new(WORKLOAD_SEED ^ 0xED17 ^ ((device as u64) << 40));
    let mut all: Vec<u32> = (0..n).collect();
    let k = (n / 5) as usize;
    for i in 0..k {
        let j = i + r.below((all.len() - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(k);
    all
}

/// The edits device `device` makes to `indexes` (a slice of its `edit_plan`).
pub fn edits(device: u32, indexes: &[u32]) -> Vec<CaseEdit> {
    indexes.iter().map(|&i| edit_case(device, i)).collect()
}

fn edit_case(device: u32, index: u32) -> CaseEdit {
    let mut r = item_rng(100 + device as u64, index);
    // all devices edit during the same simulated 8-hour field day, 90 days after T0
    let at = T0 + 90 * 24 * HOUR + r.below(8 * HOUR as u64) as i64;
    // The description always changes (an agent rewrites it after a visit),
    // plus two of the other four fields: about 565 bytes of raw content.
    let mut which = [0u8, 1, 2, 4];
    for i in 0..2 {
        let j = i + r.below((4 - i) as u64) as usize;
        which.swap(i, j);
    }
    let seeded = seed_case(index).status;
    let fields = [3u8, which[0], which[1]]
        .iter()
        .map(|w| match w {
            0 => FieldChange::Assignee(format!("agent-{:03}", r.range(1, 201))),
            1 => FieldChange::Status(next_status(&mut r, seeded)),
            2 => FieldChange::Priority(r.below(3) as i64),
            3 => FieldChange::Description(text(&mut r, 185, 215)),
            _ => FieldChange::Locality(r.pick_str(&LOCALITIES)),
        })
        .collect();
    CaseEdit {
        index,
        at,
        fields,
        event: EventSeed {
            kind: "note",
            text: text(&mut r, 325, 365),
            at,
        },
    }
}

/// A status the workflow allows after `from` (every device starts from the
/// seeded status, so concurrent changes are each valid on their own).
fn next_status(r: &mut Rng, from: i64) -> i64 {
    use guichet_core::Status;
    let from = Status::from_code(from).expect("seeded statuses are valid");
    let allowed: Vec<Status> = Status::ALL
        .iter()
        .copied()
        .filter(|to| from.can_become(*to))
        .collect();
    r.pick(&allowed).code() as i64
}
