//! Names and places: common Australian given names and surnames, streets and suburbs
//! with their real postcodes, e-mail domains and the notes a front desk writes.

/// Given names common in Australia, with a usual short form. Both lists run in
/// generations (see `given_name` for the ranges): names of the 2010s, of the
/// 1970s–90s, of the 1940s–60s, and from index 47 names of migrant communities.
#[rustfmt::skip]
pub(crate) const FEMALE: &[(&str, Option<&str>)] = &[
    ("Charlotte", Some("Charlie")), ("Olivia", Some("Liv")), ("Amelia", Some("Millie")),
    ("Isla", None), ("Mia", None), ("Ava", None), ("Grace", None), ("Chloe", None),
    ("Sophie", None), ("Emily", Some("Em")), ("Ruby", None), ("Matilda", Some("Tilly")),
    ("Zoe", None), ("Hannah", None), ("Ella", None), ("Lily", None), ("Jessica", Some("Jess")),
    ("Sarah", None), ("Rebecca", Some("Bec")), ("Emma", None), ("Lauren", None),
    ("Michelle", Some("Shell")), ("Nicole", Some("Nic")), ("Kate", None), ("Rachel", None),
    ("Melissa", Some("Mel")), ("Amanda", Some("Mandy")), ("Danielle", Some("Dani")),
    ("Kylie", None), ("Natalie", Some("Nat")), ("Lisa", None), ("Karen", None), ("Julie", None),
    ("Jennifer", Some("Jenny")), ("Elizabeth", Some("Liz")), ("Catherine", Some("Cathy")),
    ("Susan", Some("Sue")), ("Margaret", Some("Marg")), ("Patricia", Some("Trish")),
    ("Helen", None), ("Christine", Some("Chris")), ("Deborah", Some("Deb")),
    ("Jacqueline", Some("Jacqui")), ("Joanne", Some("Jo")), ("Barbara", Some("Barb")),
    ("Dorothy", Some("Dot")), ("Joan", None), ("Priya", None), ("Mei", None), ("Linh", None),
    ("Aaliyah", None), ("Sienna", None),
];

#[rustfmt::skip]
pub(crate) const MALE: &[(&str, Option<&str>)] = &[
    ("Oliver", Some("Ollie")), ("Noah", None), ("Jack", None), ("William", Some("Will")),
    ("Leo", None), ("Lucas", None), ("Henry", None), ("Thomas", Some("Tom")), ("Charlie", None),
    ("Hudson", None), ("Harrison", Some("Harry")), ("Lachlan", Some("Lachie")),
    ("Cooper", None), ("Ethan", None), ("Liam", None), ("Joshua", Some("Josh")),
    ("Daniel", Some("Dan")), ("Matthew", Some("Matt")), ("James", Some("Jim")),
    ("Benjamin", Some("Ben")), ("Samuel", Some("Sam")), ("Nicholas", Some("Nick")),
    ("Andrew", Some("Andy")), ("Michael", Some("Mick")), ("David", Some("Dave")),
    ("Christopher", Some("Chris")), ("Mark", None), ("Scott", None), ("Jason", None),
    ("Craig", None), ("Brett", None), ("Darren", Some("Dazza")), ("Shane", None),
    ("Glenn", None), ("Peter", Some("Pete")), ("Paul", None), ("Stephen", Some("Steve")),
    ("Robert", Some("Bob")), ("Anthony", Some("Tony")), ("Richard", Some("Rick")),
    ("John", None), ("Gregory", Some("Greg")), ("Geoffrey", Some("Geoff")), ("Kevin", None),
    ("Raymond", Some("Ray")), ("Kenneth", Some("Ken")), ("Bruce", None), ("Arjun", None),
    ("Wei", None), ("Minh", None), ("Mohammed", None), ("Alexander", Some("Alex")),
];

/// A given name (and its short form) fitting the birth year: the names of the 2010s for
/// children, of the 1970s–90s for younger adults, of the 1940s–60s for older adults,
/// and names of migrant communities in every generation.
pub(crate) fn given_name(
    rng: &mut impl rand::Rng,
    female: bool,
    born: i32,
) -> (&'static str, Option<&'static str>) {
    use super::fake::Dice;
    let list = if female { FEMALE } else { MALE };
    let (modern, middle, older) = if female {
        (0..16, 16..34, 34..47)
    } else {
        (0..16, 15..34, 33..47)
    };
    let range = if rng.chance(0.1) {
        47..list.len()
    } else if born >= 2000 {
        modern
    } else if born >= 1970 {
        middle
    } else {
        older
    };
    list[rng.gen_range(range)]
}

/// Surnames common in Australia (ABS and electoral-roll frequency, broadly).
pub(crate) const SURNAMES: &[&str] = &[
    "Smith",
    "Jones",
    "Williams",
    "Brown",
    "Wilson",
    "Taylor",
    "Johnson",
    "White",
    "Martin",
    "Anderson",
    "Thompson",
    "Nguyen",
    "Thomas",
    "Walker",
    "Harris",
    "Lee",
    "Ryan",
    "Robinson",
    "Kelly",
    "King",
    "Davis",
    "Wright",
    "Evans",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Patel",
    "Khan",
    "Lewis",
    "James",
    "Phillips",
    "Mitchell",
    "Turner",
    "Murphy",
    "O'Brien",
    "Singh",
    "Chen",
    "Wang",
    "Li",
    "Zhang",
    "Tran",
    "Le",
    "Campbell",
    "Young",
    "Scott",
    "Edwards",
    "Hughes",
    "Moore",
    "Hill",
    "Baker",
    "Cooper",
    "Ward",
    "Morris",
    "Ross",
    "Stewart",
    "Bell",
    "Murray",
    "Cook",
    "Kennedy",
    "Graham",
    "Kaur",
    "Sharma",
    "Papadopoulos",
    "Rossi",
    "Russo",
    "Costa",
    "Sullivan",
    "Quinn",
    "McDonald",
    "Fraser",
    "Hunter",
    "Walsh",
    "Byrne",
    "O'Connor",
    "Gallagher",
    "Ali",
    "Ahmed",
    "Kim",
    "Park",
    "Lim",
    "Tan",
    "Wong",
    "Ho",
    "Pham",
    "Huang",
    "Liu",
    "Marshall",
    "Bennett",
    "Carter",
    "Shaw",
    "Chapman",
    "Reid",
    "Simpson",
    "Webb",
    "Ellis",
    "Knight",
    "McKenzie",
    "Nicholson",
    "Hayes",
    "Doyle",
    "Burke",
    "Fitzgerald",
    "Lynch",
];

pub(crate) const STREETS: &[&str] = &[
    "George",
    "King",
    "Victoria",
    "Albert",
    "Queen",
    "Church",
    "High",
    "Station",
    "Park",
    "Railway",
    "Bay",
    "Beach",
    "Forest",
    "Hill",
    "Lake",
    "Ocean",
    "River",
    "Pacific",
    "Elizabeth",
    "William",
    "Wattle",
    "Banksia",
    "Acacia",
    "Jacaranda",
    "Bottlebrush",
    "Waratah",
    "Grevillea",
    "Kurrajong",
    "Boronia",
    "Myrtle",
    "Hume",
    "Flinders",
    "Sturt",
    "Oxley",
    "Mitchell",
    "Macquarie",
    "Bligh",
    "Phillip",
    "Hunter",
    "Darling",
    "Murray",
    "Anzac",
    "Federation",
    "Cambridge",
    "Oxford",
    "Gordon",
    "Princes",
    "Military",
    "Short",
    "Long",
];

pub(crate) const STREET_TYPES: &[(&str, u32)] = &[
    ("Street", 40),
    ("Road", 20),
    ("Avenue", 12),
    ("Parade", 4),
    ("Crescent", 6),
    ("Drive", 6),
    ("Lane", 2),
    ("Place", 4),
    ("Court", 3),
    ("Close", 2),
    ("Terrace", 1),
];

/// Suburbs with their real postcodes, by state.
pub(crate) const SUBURBS: &[(&str, &str, &str)] = &[
    ("Chatswood", "2067", "NSW"),
    ("Parramatta", "2150", "NSW"),
    ("Bondi Junction", "2022", "NSW"),
    ("Hornsby", "2077", "NSW"),
    ("Castle Hill", "2154", "NSW"),
    ("Penrith", "2750", "NSW"),
    ("Liverpool", "2170", "NSW"),
    ("Cronulla", "2230", "NSW"),
    ("Manly", "2095", "NSW"),
    ("Newtown", "2042", "NSW"),
    ("Ryde", "2112", "NSW"),
    ("Blacktown", "2148", "NSW"),
    ("Hurstville", "2220", "NSW"),
    ("Epping", "2121", "NSW"),
    ("Dee Why", "2099", "NSW"),
    ("Marrickville", "2204", "NSW"),
    ("Randwick", "2031", "NSW"),
    ("Strathfield", "2135", "NSW"),
    ("Bankstown", "2200", "NSW"),
    ("Wollongong", "2500", "NSW"),
    ("Richmond", "3121", "VIC"),
    ("St Kilda", "3182", "VIC"),
    ("Box Hill", "3128", "VIC"),
    ("Glen Waverley", "3150", "VIC"),
    ("Footscray", "3011", "VIC"),
    ("Brunswick", "3056", "VIC"),
    ("Frankston", "3199", "VIC"),
    ("Dandenong", "3175", "VIC"),
    ("Camberwell", "3124", "VIC"),
    ("Doncaster", "3108", "VIC"),
    ("Hawthorn", "3122", "VIC"),
    ("Carlton", "3053", "VIC"),
    ("Chermside", "4032", "QLD"),
    ("Indooroopilly", "4068", "QLD"),
    ("Carindale", "4152", "QLD"),
    ("Toowong", "4066", "QLD"),
    ("Springwood", "4127", "QLD"),
    ("Redcliffe", "4020", "QLD"),
    ("Ipswich", "4305", "QLD"),
    ("Aspley", "4034", "QLD"),
    ("Fremantle", "6160", "WA"),
    ("Joondalup", "6027", "WA"),
    ("Subiaco", "6008", "WA"),
    ("Cannington", "6107", "WA"),
    ("Midland", "6056", "WA"),
    ("Rockingham", "6168", "WA"),
    ("Scarborough", "6019", "WA"),
    ("Cottesloe", "6011", "WA"),
    ("Glenelg", "5045", "SA"),
    ("Norwood", "5067", "SA"),
    ("Unley", "5061", "SA"),
    ("Belconnen", "2617", "ACT"),
    ("Hobart", "7000", "TAS"),
];

pub(crate) const EMAIL_DOMAINS: &[(&str, u32)] = &[
    ("gmail.com", 45),
    ("outlook.com", 10),
    ("hotmail.com", 12),
    ("bigpond.com", 8),
    ("icloud.com", 10),
    ("yahoo.com.au", 7),
    ("optusnet.com.au", 4),
    ("live.com.au", 4),
];

/// Front-desk notes on a patient record (adults, then children).
pub(crate) const ADULT_NOTES: &[&str] = &[
    "Anxious patient – prefers morning appointments",
    "Allergic to penicillin",
    "Takes warfarin – check INR before extractions",
    "Needle phobia – topical anaesthetic first",
    "Prefers SMS contact only",
    "Hearing impaired – please face patient when speaking",
    "Requires wheelchair access",
    "Latex allergy",
    "Type 2 diabetes",
    "On bisphosphonates – caution with extractions",
    "Works shifts – call before booking",
    "Gag reflex – small sensor for x-rays",
];
pub(crate) const CHILD_NOTES: &[&str] = &[
    "Parent or guardian to attend all appointments",
    "Nervous child – book longer appointment",
    "Asthma – brings puffer",
    "Eligible for CDBS – check balance before treatment",
];

pub(crate) const CANCEL_REASONS_PATIENT: &[&str] = &[
    "Unwell",
    "Work commitments",
    "Family emergency",
    "Child unwell",
    "Transport issues",
    "Forgot – rescheduled",
    "Travelling",
    "Financial reasons",
];
pub(crate) const CANCEL_REASONS_PRACTICE: &[&str] = &[
    "Practitioner unwell",
    "Practitioner on leave",
    "Equipment failure",
    "Lab work not ready",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcodes_match_states() {
        for (suburb, postcode, state) in SUBURBS {
            let first = postcode.as_bytes()[0];
            let ok = match *state {
                "NSW" => first == b'2',
                "ACT" => postcode.starts_with("26") || postcode.starts_with("29"),
                "VIC" => first == b'3',
                "QLD" => first == b'4',
                "SA" => first == b'5',
                "WA" => first == b'6',
                "TAS" => first == b'7',
                _ => false,
            };
            assert!(ok && postcode.len() == 4, "{suburb} {postcode} {state}");
        }
    }
}
