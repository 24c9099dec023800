//! The ADA service items the practice charges: number, description (after the ADA's
//! Australian Schedule of Dental Services), category, current fee in cents, GST,
//! usual chair time.

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
