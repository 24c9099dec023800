//! Reference data of an Australian dental practice: ADA item numbers and fees, health
//! funds, third-party payers, appointment types and statuses, payment types, expense
//! categories and the group's locations.
//!
//! Fees are typical private-practice fees in AUD (cents) for the financial year that
//! contains `as_of`; earlier years are derived by indexation (see `setup`). Item
//! descriptions follow the ADA's Australian Schedule of Dental Services.

/// A clinical category of the ADA schedule, as stored in `service_items.category`.
pub(crate) const DIAGNOSTIC: &str = "Diagnostic";
pub(crate) const PREVENTIVE: &str = "Preventive";
pub(crate) const PERIODONTICS: &str = "Periodontics";
pub(crate) const ORAL_SURGERY: &str = "Oral Surgery";
pub(crate) const ENDODONTICS: &str = "Endodontics";
pub(crate) const RESTORATIVE: &str = "Restorative";
pub(crate) const PROSTHODONTICS: &str = "Prosthodontics";
pub(crate) const ORTHODONTICS: &str = "Orthodontics";
pub(crate) const GENERAL: &str = "General";

/// One ADA service item: number, description, category, current fee, GST, minutes.
pub(crate) struct Item {
    pub number: &'static str,
    pub description: &'static str,
    pub category: &'static str,
    pub fee_cents: i64,
    pub gst: bool,
    pub minutes: Option<i64>,
}

const fn item(
    number: &'static str,
    description: &'static str,
    category: &'static str,
    fee_cents: i64,
    minutes: i64,
) -> Item {
    Item {
        number,
        description,
        category,
        fee_cents,
        gst: false,
        minutes: Some(minutes),
    }
}

/// The service items; `service_items.id` is the index + 1.
pub(crate) const ITEMS: &[Item] = &[
    item("011", "Comprehensive oral examination", DIAGNOSTIC, 7_000, 15),
    item("012", "Periodic oral examination", DIAGNOSTIC, 6_200, 10),
    item("013", "Oral examination – limited", DIAGNOSTIC, 5_500, 10),
    item("014", "Consultation", DIAGNOSTIC, 8_500, 20),
    item("015", "Consultation – extended (30 minutes or more)", DIAGNOSTIC, 14_000, 30),
    item("022", "Intraoral periapical or bitewing radiograph – per exposure", DIAGNOSTIC, 4_200, 5),
    item("037", "Panoramic radiograph – per exposure", DIAGNOSTIC, 11_000, 10),
    item("071", "Diagnostic model – per model", DIAGNOSTIC, 7_500, 10),
    item("072", "Photographic records – intraoral – per appointment", DIAGNOSTIC, 4_000, 5),
    item("111", "Removal of plaque and/or stain", PREVENTIVE, 6_500, 15),
    item("114", "Removal of calculus – first appointment", PREVENTIVE, 11_000, 20),
    item("115", "Removal of calculus – subsequent appointment", PREVENTIVE, 8_500, 15),
    item(
        "121",
        "Topical application of remineralisation and/or cariostatic agents, one treatment",
        PREVENTIVE,
        4_500,
        5,
    ),
    item("141", "Oral hygiene instruction", PREVENTIVE, 3_500, 10),
    item("161", "Fissure and/or tooth surface sealing – per tooth", PREVENTIVE, 6_500, 10),
    Item {
        number: "118",
        description: "Bleaching, external – per tooth",
        category: GENERAL,
        fee_cents: 9_500,
        gst: true,
        minutes: Some(10),
    },
    Item {
        number: "119",
        description: "Bleaching – home application – per arch",
        category: GENERAL,
        fee_cents: 35_000,
        gst: true,
        minutes: Some(20),
    },
    item("221", "Clinical periodontal analysis and recording", PERIODONTICS, 9_500, 15),
    item("222", "Root planing and subgingival curettage – per tooth", PERIODONTICS, 5_500, 10),
    item("250", "Active non-surgical periodontal therapy – per quadrant", PERIODONTICS, 28_000, 30),
    item("251", "Supportive periodontal therapy – per appointment", PERIODONTICS, 22_000, 45),
    item("311", "Removal of a tooth or part(s) thereof", ORAL_SURGERY, 23_000, 30),
    item("314", "Sectional removal of a tooth", ORAL_SURGERY, 33_000, 45),
    item(
        "322",
        "Surgical removal of a tooth or tooth fragment requiring removal of bone",
        ORAL_SURGERY,
        42_000,
        45,
    ),
    item(
        "323",
        "Surgical removal of a tooth or tooth fragment requiring removal of bone and tooth division",
        ORAL_SURGERY,
        48_000,
        60,
    ),
    item("411", "Direct pulp capping", ENDODONTICS, 5_500, 10),
    item("414", "Pulpotomy", ENDODONTICS, 19_000, 30),
    item(
        "415",
        "Complete chemo-mechanical preparation of root canal – one canal",
        ENDODONTICS,
        33_000,
        45,
    ),
    item(
        "416",
        "Complete chemo-mechanical preparation of root canal – each additional canal",
        ENDODONTICS,
        18_000,
        20,
    ),
    item("417", "Root canal obturation – one canal", ENDODONTICS, 27_000, 30),
    item("418", "Root canal obturation – each additional canal", ENDODONTICS, 14_000, 15),
    item(
        "419",
        "Extirpation of pulp or debridement of root canal(s) – emergency or palliative",
        ENDODONTICS,
        21_000,
        30,
    ),
    item("521", "Adhesive restoration – one surface – anterior tooth – direct", RESTORATIVE, 16_500, 30),
    item("522", "Adhesive restoration – two surfaces – anterior tooth – direct", RESTORATIVE, 20_500, 30),
    item("523", "Adhesive restoration – three surfaces – anterior tooth – direct", RESTORATIVE, 24_500, 45),
    item("524", "Adhesive restoration – four surfaces – anterior tooth – direct", RESTORATIVE, 28_000, 45),
    item("525", "Adhesive restoration – five surfaces – anterior tooth – direct", RESTORATIVE, 31_500, 45),
    item("531", "Adhesive restoration – one surface – posterior tooth – direct", RESTORATIVE, 18_000, 30),
    item("532", "Adhesive restoration – two surfaces – posterior tooth – direct", RESTORATIVE, 23_000, 30),
    item("533", "Adhesive restoration – three surfaces – posterior tooth – direct", RESTORATIVE, 27_500, 45),
    item("534", "Adhesive restoration – four surfaces – posterior tooth – direct", RESTORATIVE, 31_500, 45),
    item("535", "Adhesive restoration – five surfaces – posterior tooth – direct", RESTORATIVE, 35_000, 45),
    item("613", "Full crown – non-metallic – indirect", PROSTHODONTICS, 175_000, 60),
    item("615", "Full crown – veneered – indirect", PROSTHODONTICS, 180_000, 60),
    item("618", "Full crown – metallic – indirect", PROSTHODONTICS, 165_000, 60),
    item("631", "Provisional crown – per tooth", PROSTHODONTICS, 18_000, 30),
    item("711", "Complete maxillary denture", PROSTHODONTICS, 165_000, 45),
    item("712", "Complete mandibular denture", PROSTHODONTICS, 165_000, 45),
    item("719", "Complete maxillary and mandibular dentures", PROSTHODONTICS, 310_000, 60),
    item("721", "Partial maxillary denture – resin base", PROSTHODONTICS, 105_000, 45),
    item("722", "Partial mandibular denture – resin base", PROSTHODONTICS, 105_000, 45),
    item("741", "Adjustment of a denture", PROSTHODONTICS, 7_000, 15),
    item("811", "Passive removable appliance – per arch", ORTHODONTICS, 65_000, 30),
    item("831", "Full arch banding – per arch", ORTHODONTICS, 280_000, 60),
    item("871", "Orthodontic adjustment", ORTHODONTICS, 12_000, 15),
    item("911", "Palliative care", GENERAL, 9_500, 15),
];

/// The index in `ITEMS` of an item number; panics on a number that is not in the table
/// (a programming error caught by the tests).
pub(crate) fn item_index(number: &str) -> usize {
    ITEMS
        .iter()
        .position(|i| i.number == number)
        .unwrap_or_else(|| panic!("unknown ADA item {number}"))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_numbers_are_unique_three_digits() {
        for (i, a) in ITEMS.iter().enumerate() {
            assert_eq!(a.number.len(), 3, "{}", a.number);
            assert!(a.number.bytes().all(|b| b.is_ascii_digit()));
            assert!(a.fee_cents > 0 && a.fee_cents % 50 == 0, "{}", a.number);
            assert!(
                ITEMS[i + 1..].iter().all(|b| b.number != a.number),
                "{}",
                a.number
            );
        }
        assert_eq!(ITEMS[item_index("011")].fee_cents, 7_000);
    }
}
