//! The practice tables as the generator writes them: column order per table, row
//! cells, and `Out`, the per-table buffer that hands full batches to the writer.
//!
//! Column lists mirror `schema/practice.sql`; a test checks them against the DDL so a
//! schema change cannot silently shift values into the wrong columns.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use tokio::sync::mpsc;

use crate::value::{Row, Value};

/// One table: its name and its columns in insert order.
#[derive(Debug)]
pub(crate) struct TableDef {
    pub name: &'static str,
    pub columns: &'static [&'static str],
}

pub(crate) const LOCATIONS: usize = 0;
pub(crate) const PRACTITIONERS: usize = 1;
pub(crate) const USER_ROLES: usize = 2;
pub(crate) const USERS: usize = 3;
pub(crate) const HEALTH_FUNDS: usize = 4;
pub(crate) const REFERRAL_SOURCES: usize = 5;
pub(crate) const THIRD_PARTIES: usize = 6;
pub(crate) const PATIENTS: usize = 7;
pub(crate) const APPOINTMENT_STATUSES: usize = 8;
pub(crate) const APPOINTMENT_TYPES: usize = 9;
pub(crate) const APPOINTMENTS: usize = 10;
pub(crate) const CANCELLATIONS: usize = 11;
pub(crate) const WAITLIST: usize = 12;
pub(crate) const REMINDERS: usize = 13;
pub(crate) const SCHEDULE_TEMPLATES: usize = 14;
pub(crate) const RECALL_TYPES: usize = 15;
pub(crate) const RECALLS: usize = 16;
pub(crate) const SERVICE_ITEMS: usize = 17;
pub(crate) const FEE_SCHEDULES: usize = 18;
pub(crate) const FEE_SCHEDULE_ITEMS: usize = 19;
pub(crate) const TREATMENT_PLANS: usize = 20;
pub(crate) const TREATMENT_PLAN_ITEMS: usize = 21;
pub(crate) const TREATMENTS: usize = 22;
pub(crate) const INVOICES: usize = 23;
pub(crate) const PAYMENT_TYPES: usize = 24;
pub(crate) const PAYMENTS: usize = 25;
pub(crate) const TRANSACTIONS: usize = 26;
pub(crate) const DEPOSITS: usize = 27;
pub(crate) const PAYMENT_ALLOCATIONS: usize = 28;
pub(crate) const DISCOUNTS: usize = 29;
pub(crate) const EXPENSE_CATEGORIES: usize = 30;
pub(crate) const EXPENSES: usize = 31;

/// Every practice table, in `schema::TABLES` order.
#[rustfmt::skip]
pub(crate) const DEFS: [TableDef; 32] = [
    TableDef { name: "locations", columns: &["id", "name", "code", "address_line", "suburb", "state", "postcode", "phone", "email", "abn", "timezone", "active", "created_at", "updated_at"] },
    TableDef { name: "practitioners", columns: &["id", "title", "first_name", "last_name", "provider_number", "ahpra_number", "specialty", "location_id", "email", "phone", "colour", "active", "created_at", "updated_at"] },
    TableDef { name: "user_roles", columns: &["id", "name", "description", "is_admin", "created_at", "updated_at"] },
    TableDef { name: "users", columns: &["id", "role_id", "practitioner_id", "location_id", "username", "email", "first_name", "last_name", "active", "last_login_at", "created_at", "updated_at"] },
    TableDef { name: "health_funds", columns: &["id", "name", "code", "phone", "website", "active", "created_at", "updated_at"] },
    TableDef { name: "referral_sources", columns: &["id", "name", "kind", "active", "created_at", "updated_at"] },
    TableDef { name: "third_parties", columns: &["id", "name", "kind", "contact_name", "phone", "email", "address_line", "active", "created_at", "updated_at"] },
    TableDef { name: "patients", columns: &["id", "title", "first_name", "last_name", "preferred_name", "date_of_birth", "gender", "email", "mobile_phone", "home_phone", "address_line", "suburb", "state", "postcode", "health_fund_id", "health_fund_member_number", "medicare_number", "medicare_irn", "dva_number", "third_party_id", "referral_source_id", "practitioner_id", "location_id", "sms_opt_in", "email_opt_in", "active", "deceased", "notes", "created_at", "updated_at"] },
    TableDef { name: "appointment_statuses", columns: &["id", "name", "code", "is_completed", "is_cancelled", "sort_order", "colour", "created_at", "updated_at"] },
    TableDef { name: "appointment_types", columns: &["id", "name", "default_duration_minutes", "colour", "active", "created_at", "updated_at"] },
    TableDef { name: "appointments", columns: &["id", "patient_id", "practitioner_id", "location_id", "appointment_type_id", "status_id", "start_time", "end_time", "duration_minutes", "chair", "is_new_patient", "confirmed", "arrived_at", "booked_by_user_id", "recall_id", "notes", "created_at", "updated_at"] },
    TableDef { name: "cancellations", columns: &["id", "appointment_id", "patient_id", "cancelled_at", "cancelled_by", "reason", "notice_hours", "rebooked", "rebooked_appointment_id", "cancellation_fee", "created_at", "updated_at"] },
    TableDef { name: "waitlist", columns: &["id", "patient_id", "practitioner_id", "location_id", "appointment_type_id", "requested_date", "preferred_time", "priority", "status", "appointment_id", "notes", "created_at", "updated_at"] },
    TableDef { name: "reminders", columns: &["id", "appointment_id", "patient_id", "channel", "recipient", "sent_at", "status", "created_at", "updated_at"] },
    TableDef { name: "schedule_templates", columns: &["id", "practitioner_id", "location_id", "day_of_week", "start_time", "end_time", "slot_minutes", "effective_from", "effective_to", "created_at", "updated_at"] },
    TableDef { name: "recall_types", columns: &["id", "name", "interval_months", "description", "active", "created_at", "updated_at"] },
    TableDef { name: "recalls", columns: &["id", "patient_id", "recall_type_id", "practitioner_id", "location_id", "due_date", "status", "appointment_id", "completed_date", "last_reminder_at", "reminder_count", "created_at", "updated_at"] },
    TableDef { name: "service_items", columns: &["id", "item_number", "description", "category", "default_fee", "gst", "default_duration_minutes", "active", "created_at", "updated_at"] },
    TableDef { name: "fee_schedules", columns: &["id", "name", "health_fund_id", "effective_from", "effective_to", "is_default", "active", "created_at", "updated_at"] },
    TableDef { name: "fee_schedule_items", columns: &["id", "fee_schedule_id", "service_item_id", "fee", "created_at", "updated_at"] },
    TableDef { name: "treatment_plans", columns: &["id", "patient_id", "practitioner_id", "location_id", "title", "status", "plan_date", "accepted_date", "estimated_total", "notes", "created_at", "updated_at"] },
    TableDef { name: "treatment_plan_items", columns: &["id", "treatment_plan_id", "service_item_id", "item_number", "tooth", "surface", "quantity", "fee", "sequence_number", "status", "treatment_id", "created_at", "updated_at"] },
    TableDef { name: "treatments", columns: &["id", "patient_id", "practitioner_id", "location_id", "appointment_id", "service_item_id", "treatment_plan_item_id", "item_number", "tooth", "surface", "quantity", "treatment_date", "fee", "gst", "invoice_id", "notes", "created_at", "updated_at"] },
    TableDef { name: "invoices", columns: &["id", "patient_id", "practitioner_id", "location_id", "third_party_id", "invoice_number", "invoice_date", "due_date", "total", "gst", "status", "notes", "created_at", "updated_at"] },
    TableDef { name: "payment_types", columns: &["id", "name", "code", "is_electronic", "active", "created_at", "updated_at"] },
    TableDef { name: "payments", columns: &["id", "patient_id", "payment_type_id", "location_id", "payment_date", "amount", "reference", "health_fund_id", "received_by_user_id", "deposit_id", "notes", "created_at", "updated_at"] },
    TableDef { name: "transactions", columns: &["id", "patient_id", "invoice_id", "payment_id", "practitioner_id", "location_id", "transaction_date", "kind", "amount", "description", "created_by_user_id", "created_at", "updated_at"] },
    TableDef { name: "deposits", columns: &["id", "location_id", "payment_type_id", "deposit_date", "amount", "reference", "deposited_by_user_id", "created_at", "updated_at"] },
    TableDef { name: "payment_allocations", columns: &["id", "payment_id", "invoice_id", "amount", "allocated_at", "created_at", "updated_at"] },
    TableDef { name: "discounts", columns: &["id", "invoice_id", "patient_id", "discount_date", "amount", "kind", "reason", "approved_by_user_id", "created_at", "updated_at"] },
    TableDef { name: "expense_categories", columns: &["id", "name", "code", "active", "created_at", "updated_at"] },
    TableDef { name: "expenses", columns: &["id", "expense_category_id", "location_id", "supplier", "expense_date", "amount", "gst", "description", "payment_method", "supplier_invoice_number", "created_at", "updated_at"] },
];

/// A cell holding an id or count.
pub(crate) fn int(v: i64) -> Value {
    Value::Int(v)
}

/// A nullable id.
pub(crate) fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Int)
}

pub(crate) fn text(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

pub(crate) fn opt_text<S: Into<String>>(v: Option<S>) -> Value {
    v.map_or(Value::Null, |s| Value::Text(s.into()))
}

pub(crate) fn flag(v: bool) -> Value {
    Value::Bool(v)
}

/// Money from integer cents, scale 2.
pub(crate) fn money(cents: i64) -> Value {
    Value::Decimal(Decimal::new(cents, 2))
}

pub(crate) fn date(v: NaiveDate) -> Value {
    Value::Date(v)
}

pub(crate) fn opt_date(v: Option<NaiveDate>) -> Value {
    v.map_or(Value::Null, Value::Date)
}

pub(crate) fn time(v: NaiveDateTime) -> Value {
    Value::DateTime(v)
}

pub(crate) fn opt_time(v: Option<NaiveDateTime>) -> Value {
    v.map_or(Value::Null, Value::DateTime)
}

/// Rows of one table on their way to the writer.
pub(crate) struct Batch {
    pub table: usize,
    pub rows: Vec<Row>,
}

/// Per-table row buffers; a buffer that reaches `flush_rows` rows is sent as one batch
/// (the writer loads each batch in one transaction). Sending blocks while the writer is
/// behind, which keeps memory flat.
pub(crate) struct Out {
    bufs: Vec<Vec<Row>>,
    tx: mpsc::Sender<Batch>,
    flush_rows: usize,
    closed: bool,
}

impl Out {
    pub(crate) fn new(tx: mpsc::Sender<Batch>, flush_rows: usize) -> Out {
        Out {
            bufs: DEFS.iter().map(|_| Vec::new()).collect(),
            tx,
            flush_rows,
            closed: false,
        }
    }

    /// Queues one row of `table`; the row's cells follow `DEFS[table].columns`.
    pub(crate) fn push(&mut self, table: usize, row: Row) {
        debug_assert_eq!(
            row.len(),
            DEFS[table].columns.len(),
            "row width of {}",
            DEFS[table].name
        );
        self.bufs[table].push(row);
        if self.bufs[table].len() >= self.flush_rows {
            self.flush(table);
        }
    }

    /// Whether the writer has gone away (it failed); generation should stop.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    fn flush(&mut self, table: usize) {
        let rows = std::mem::take(&mut self.bufs[table]);
        if rows.is_empty() || self.closed {
            return;
        }
        if self.tx.blocking_send(Batch { table, rows }).is_err() {
            self.closed = true;
        }
    }

    /// Sends everything still buffered.
    pub(crate) fn finish(mut self) {
        for table in 0..self.bufs.len() {
            self.flush(table);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::schema;
    use crate::dialect::Dialect;

    #[test]
    fn column_lists_match_the_ddl() {
        let stmts = schema::statements(Dialect::Sqlite);
        assert_eq!(DEFS.len(), schema::TABLES.len());
        for (def, name) in DEFS.iter().zip(schema::TABLES) {
            assert_eq!(def.name, *name);
            let create = stmts
                .iter()
                .find(|s| s.starts_with(&format!("CREATE TABLE {name} (")))
                .expect("table in DDL");
            let body = &create[create.find('(').unwrap() + 1..create.rfind(')').unwrap()];
            let cols: Vec<&str> = body
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| l.split_whitespace().next().unwrap())
                .collect();
            assert_eq!(def.columns, cols.as_slice(), "{name}");
        }
    }
}
