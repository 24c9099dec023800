//! Reference data of an Australian dental practice: health funds, third-party payers,
//! referral sources, appointment types and statuses, recall and payment types, roles,
//! expense categories and the group's locations (the ADA items are in `items`).
//!
//! Fees are typical private-practice fees in AUD (cents) for the financial year that
//! contains `as_of`; earlier years are derived by indexation (see `catalogue`).

pub(crate) use super::items::*;

/// A private health insurer: name, code, phone, website, national market weight and
/// its share of Western Australian members (HBF is mostly WA).
pub(crate) struct Fund {
    pub name: &'static str,
    pub code: &'static str,
    pub phone: Option<&'static str>,
    pub website: &'static str,
    pub weight: u32,
    pub wa_weight: u32,
}

const fn fund(
    name: &'static str,
    code: &'static str,
    phone: Option<&'static str>,
    website: &'static str,
    weight: u32,
    wa_weight: u32,
) -> Fund {
    Fund {
        name,
        code,
        phone,
        website,
        weight,
        wa_weight,
    }
}

/// `health_funds.id` is the index + 1.
pub(crate) const FUNDS: &[Fund] = &[
    fund(
        "Medibank",
        "MBP",
        Some("132 331"),
        "www.medibank.com.au",
        220,
        120,
    ),
    fund("Bupa", "BUP", Some("134 135"), "www.bupa.com.au", 250, 120),
    fund("HCF", "HCF", Some("13 13 34"), "www.hcf.com.au", 120, 30),
    fund("nib", "NIB", Some("13 16 42"), "www.nib.com.au", 90, 40),
    fund("HBF", "HBF", Some("133 423"), "www.hbf.com.au", 25, 450),
    fund("ahm", "AHM", Some("134 246"), "www.ahm.com.au", 60, 30),
    fund(
        "Australian Unity",
        "AUF",
        Some("13 29 39"),
        "www.australianunity.com.au",
        30,
        10,
    ),
    fund("GMHBA", "GMH", None, "www.gmhba.com.au", 25, 10),
    fund(
        "Teachers Health",
        "TFS",
        None,
        "www.teachershealth.com.au",
        25,
        20,
    ),
    fund(
        "Defence Health",
        "DHF",
        None,
        "www.defencehealth.com.au",
        15,
        15,
    ),
    fund("CBHS Health", "CBH", None, "www.cbhs.com.au", 15, 10),
    fund("Westfund", "WFD", None, "www.westfund.com.au", 10, 5),
    fund("Peoplecare", "PCA", None, "www.peoplecare.com.au", 8, 3),
    fund("HIF", "HIF", None, "www.hif.com.au", 8, 60),
    fund(
        "Health Partners",
        "HPS",
        None,
        "www.healthpartners.com.au",
        10,
        2,
    ),
    fund(
        "Queensland Country Health Fund",
        "QCH",
        None,
        "www.qldcountryhealth.com.au",
        6,
        1,
    ),
];

/// Funds whose preferred-provider fee schedules the practice has signed (indexes into `FUNDS`).
pub(crate) const PREFERRED_FUNDS: &[(usize, &str)] = &[
    (1, "Bupa Members First"),
    (2, "HCF More For Teeth"),
    (3, "nib First Choice"),
];

/// Who may pay instead of the patient: (name, kind, phone); `third_parties.id` = index + 1.
pub(crate) const THIRD_PARTIES: &[(&str, &str, &str)] = &[
    (
        "Department of Veterans' Affairs",
        "government",
        "1800 838 372",
    ),
    (
        "Services Australia – Child Dental Benefits Schedule",
        "government",
        "132 011",
    ),
    ("icare NSW", "workers_compensation", "13 77 22"),
    ("WorkSafe Victoria", "workers_compensation", "1800 136 089"),
    (
        "WorkCover Queensland",
        "workers_compensation",
        "1300 362 128",
    ),
    ("Transport Accident Commission", "insurer", "1300 654 329"),
    ("Allianz Australia", "insurer", "13 10 13"),
];
pub(crate) const TP_DVA: usize = 0;
pub(crate) const TP_CDBS: usize = 1;

/// How new patients heard of the practice: (name, kind, weight).
pub(crate) const REFERRAL_SOURCES: &[(&str, &str, u32)] = &[
    ("Google search", "online", 26),
    ("Google Maps", "online", 10),
    ("Facebook / Instagram", "online", 6),
    ("Practice website", "online", 6),
    ("HotDoc online booking", "online", 6),
    ("Friend or family", "word_of_mouth", 22),
    ("Existing patient referral", "word_of_mouth", 8),
    ("Health fund directory", "professional", 5),
    ("GP referral", "professional", 3),
    ("Dentist referral", "professional", 2),
    ("Walk-in / signage", "advertising", 3),
    ("Letterbox drop", "advertising", 1),
    ("Local newspaper", "advertising", 1),
    ("Other", "other", 1),
];

/// (name, code, is_completed, is_cancelled, colour); `appointment_statuses.id` = index + 1.
pub(crate) const STATUSES: &[(&str, &str, bool, bool, &str)] = &[
    ("Booked", "booked", false, false, "#9E9E9E"),
    ("Confirmed", "confirmed", false, false, "#2196F3"),
    ("Arrived", "arrived", false, false, "#FFC107"),
    ("In Chair", "in_chair", false, false, "#FF9800"),
    ("Completed", "completed", true, false, "#4CAF50"),
    ("Cancelled", "cancelled", false, true, "#F44336"),
    ("Failed to Attend", "no_show", false, true, "#795548"),
];
pub(crate) const ST_BOOKED: i64 = 1;
pub(crate) const ST_CONFIRMED: i64 = 2;
pub(crate) const ST_COMPLETED: i64 = 5;
pub(crate) const ST_CANCELLED: i64 = 6;
pub(crate) const ST_NO_SHOW: i64 = 7;

/// (name, default minutes, colour); `appointment_types.id` = index + 1.
pub(crate) const APPOINTMENT_TYPES: &[(&str, i64, &str)] = &[
    ("New Patient Exam", 45, "#3F51B5"),
    ("Check-up & Clean", 45, "#03A9F4"),
    ("Children's Check-up", 30, "#8BC34A"),
    ("Periodontal Maintenance", 60, "#009688"),
    ("Filling", 45, "#FF9800"),
    ("Root Canal", 60, "#E91E63"),
    ("Crown Prep", 90, "#9C27B0"),
    ("Crown Fit", 30, "#673AB7"),
    ("Extraction", 45, "#F44336"),
    ("Emergency", 30, "#D32F2F"),
    ("Consultation", 30, "#607D8B"),
    ("Orthodontic Review", 15, "#CDDC39"),
    ("Denture Appointment", 45, "#795548"),
    ("Periodontal Treatment", 60, "#00796B"),
    ("Whitening", 30, "#FFEB3B"),
    ("Post-op Review", 15, "#BDBDBD"),
];

/// (name, months, description); `recall_types.id` = index + 1.
pub(crate) const RECALL_TYPES: &[(&str, i64, &str)] = &[
    (
        "6-Month Check-up",
        6,
        "Periodic examination and scale and clean",
    ),
    (
        "Annual Exam",
        12,
        "Yearly examination, scale and clean and bitewings",
    ),
    (
        "Periodontal Maintenance",
        3,
        "Supportive periodontal therapy",
    ),
    (
        "Children's Check-up",
        6,
        "Examination, clean and fluoride for children",
    ),
    (
        "Orthodontic Retainer Check",
        12,
        "Retainer review after orthodontic treatment",
    ),
];
pub(crate) const RT_SIX_MONTH: usize = 0;
pub(crate) const RT_ANNUAL: usize = 1;
pub(crate) const RT_PERIO: usize = 2;
pub(crate) const RT_CHILD: usize = 3;

/// (name, code, is_electronic); `payment_types.id` = index + 1.
pub(crate) const PAYMENT_TYPES: &[(&str, &str, bool)] = &[
    ("Cash", "cash", false),
    ("EFTPOS", "eftpos", true),
    ("Credit Card", "credit_card", true),
    ("HICAPS", "hicaps", true),
    ("Direct Deposit", "direct_deposit", true),
    ("Cheque", "cheque", false),
    ("Medicare Easyclaim", "medicare", true),
    ("DVA", "dva", true),
];
pub(crate) const PT_CASH: usize = 0;
pub(crate) const PT_EFTPOS: usize = 1;
pub(crate) const PT_CREDIT: usize = 2;
pub(crate) const PT_HICAPS: usize = 3;
pub(crate) const PT_DIRECT: usize = 4;
pub(crate) const PT_CHEQUE: usize = 5;
pub(crate) const PT_MEDICARE: usize = 6;
pub(crate) const PT_DVA: usize = 7;

/// (name, description, is_admin); `user_roles.id` = index + 1.
pub(crate) const ROLES: &[(&str, &str, bool)] = &[
    ("Administrator", "Full access, system configuration", true),
    (
        "Practice Manager",
        "Reports, banking, fee schedules and staff",
        true,
    ),
    (
        "Receptionist",
        "Appointment book, patients and payments",
        false,
    ),
    (
        "Dentist",
        "Clinical records, treatment plans and the appointment book",
        false,
    ),
    (
        "Hygienist",
        "Clinical records and the hygiene appointment book",
        false,
    ),
    (
        "Dental Assistant",
        "Appointment book and clinical notes",
        false,
    ),
    (
        "Accounts",
        "Invoices, payments, banking and expenses",
        false,
    ),
];
pub(crate) const ROLE_ADMIN: i64 = 1;
pub(crate) const ROLE_MANAGER: i64 = 2;
pub(crate) const ROLE_RECEPTION: i64 = 3;
pub(crate) const ROLE_DENTIST: i64 = 4;
pub(crate) const ROLE_HYGIENIST: i64 = 5;
pub(crate) const ROLE_ASSISTANT: i64 = 6;
pub(crate) const ROLE_ACCOUNTS: i64 = 7;

/// (name, chart-of-accounts code); `expense_categories.id` = index + 1.
pub(crate) const EXPENSE_CATEGORIES: &[(&str, &str)] = &[
    ("Dental Supplies", "5100"),
    ("Laboratory Fees", "5200"),
    ("Rent", "6100"),
    ("Wages", "6200"),
    ("Superannuation", "6210"),
    ("Utilities", "6300"),
    ("Telephone & Internet", "6310"),
    ("Equipment Maintenance", "6400"),
    ("Marketing", "6500"),
    ("Insurance", "6600"),
    ("Software & IT", "6700"),
    ("Cleaning & Waste", "6800"),
    ("Bank & Merchant Fees", "6900"),
    ("Professional Fees", "7000"),
    ("Continuing Education", "7100"),
];

/// A practice location of the group: suburb, street address, state, postcode, IANA zone.
pub(crate) struct Site {
    pub suburb: &'static str,
    pub street: &'static str,
    pub state: &'static str,
    pub postcode: &'static str,
    pub zone: crate::demo::clock::Zone,
}

/// The group opens at most this many locations, in this order.
pub(crate) const SITES: &[Site] = {
    use crate::demo::clock::Zone;
    &[
        Site {
            suburb: "Chatswood",
            street: "Level 2, 410 Victoria Avenue",
            state: "NSW",
            postcode: "2067",
            zone: Zone::Sydney,
        },
        Site {
            suburb: "Parramatta",
            street: "Suite 5, 88 George Street",
            state: "NSW",
            postcode: "2150",
            zone: Zone::Sydney,
        },
        Site {
            suburb: "Richmond",
            street: "231 Swan Street",
            state: "VIC",
            postcode: "3121",
            zone: Zone::Melbourne,
        },
        Site {
            suburb: "Chermside",
            street: "Shop 14, 780 Gympie Road",
            state: "QLD",
            postcode: "4032",
            zone: Zone::Brisbane,
        },
        Site {
            suburb: "Fremantle",
            street: "52 Market Street",
            state: "WA",
            postcode: "6160",
            zone: Zone::Perth,
        },
    ]
};

/// The brand of the (fictional) group practice.
pub(crate) const BRAND: &str = "Southern Cross Dental";
/// The group's e-mail domain (fictional).
pub(crate) const DOMAIN: &str = "southerncrossdental.com.au";
