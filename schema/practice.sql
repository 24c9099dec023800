-- CipherStream reference practice schema: an Australian-style dental practice.
--
-- One DDL template for SQLite, MariaDB 10.11 and PostgreSQL 15. Render it with
-- `cipherstream::demo::schema::ddl(dialect)`: the only substitution is the type token
-- DATETIME, which becomes TIMESTAMP on PostgreSQL. Everything else is portable:
--   * types: INTEGER, BIGINT, VARCHAR(n), TEXT, DECIMAL(12,2), DATE, DATETIME, BOOLEAN;
--   * `id INTEGER PRIMARY KEY` everywhere, ids are always given explicitly (no autoincrement);
--   * money is DECIMAL(12,2), GST-inclusive unless a column says otherwise;
--   * there are NO foreign-key constraints on purpose: the schema mirrors what extraction
--     sees in real practice systems (loose references, soft deletes, orphans happen), and it
--     lets the generator bulk-load tables in any order. `<table>_id` columns are logical
--     references only, and the ones used in joins or filters are indexed;
--   * every table has created_at and updated_at: DATETIME NOT NULL, in UTC;
--   * other DATETIME columns are practice-local wall-clock time unless the comment says UTC
--     (appointment start/end, cancellation time); DATE columns are calendar dates;
--   * SQLite keeps dates as text: DATE as 'YYYY-MM-DD', DATETIME as 'YYYY-MM-DD HH:MM:SS'
--     (space, no fraction, no zone), BOOLEAN as 0/1, so that comparisons with bound
--     values and the catalog's date expressions behave as on the other two databases;
--   * statements end with `;` at the end of a line; only CREATE TABLE and CREATE INDEX.

-- ---------------------------------------------------------------- practice setup

CREATE TABLE locations (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    code VARCHAR(20) NOT NULL,
    address_line VARCHAR(200),
    suburb VARCHAR(100),
    state VARCHAR(3),                      -- NSW, VIC, QLD, WA, SA, TAS, ACT, NT
    postcode VARCHAR(4),
    phone VARCHAR(20),
    email VARCHAR(200),
    abn VARCHAR(14),                       -- Australian Business Number, '12 345 678 901'
    timezone VARCHAR(64) NOT NULL,         -- IANA zone of the wall clock, e.g. 'Australia/Sydney'
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_locations_created_at ON locations (created_at);
CREATE INDEX ix_locations_updated_at ON locations (updated_at);

CREATE TABLE practitioners (
    id INTEGER PRIMARY KEY,
    title VARCHAR(10),                     -- Dr, Mr, Ms, ...
    first_name VARCHAR(60) NOT NULL,
    last_name VARCHAR(60) NOT NULL,
    provider_number VARCHAR(10),           -- Medicare provider number, e.g. '2345671A'
    ahpra_number VARCHAR(13),              -- AHPRA registration, e.g. 'DEN0001234567'
    specialty VARCHAR(60) NOT NULL,        -- General Dentist, Hygienist, Oral Health Therapist, Orthodontist, ...
    location_id INTEGER NOT NULL,          -- home location
    email VARCHAR(200),
    phone VARCHAR(20),
    colour VARCHAR(7),                     -- appointment book colour, '#RRGGBB'
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_practitioners_location_id ON practitioners (location_id);
CREATE INDEX ix_practitioners_created_at ON practitioners (created_at);
CREATE INDEX ix_practitioners_updated_at ON practitioners (updated_at);

CREATE TABLE user_roles (
    id INTEGER PRIMARY KEY,
    name VARCHAR(60) NOT NULL,             -- Administrator, Practice Manager, Receptionist, Dentist, ...
    description VARCHAR(255),
    is_admin BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_user_roles_created_at ON user_roles (created_at);
CREATE INDEX ix_user_roles_updated_at ON user_roles (updated_at);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    role_id INTEGER NOT NULL,
    practitioner_id INTEGER,               -- set when the login belongs to a practitioner
    location_id INTEGER,                   -- default location
    username VARCHAR(60) NOT NULL,
    email VARCHAR(200),
    first_name VARCHAR(60) NOT NULL,
    last_name VARCHAR(60) NOT NULL,
    active BOOLEAN NOT NULL,
    last_login_at DATETIME,                -- UTC
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_users_role_id ON users (role_id);
CREATE INDEX ix_users_practitioner_id ON users (practitioner_id);
CREATE INDEX ix_users_location_id ON users (location_id);
CREATE INDEX ix_users_last_login_at ON users (last_login_at);
CREATE INDEX ix_users_created_at ON users (created_at);
CREATE INDEX ix_users_updated_at ON users (updated_at);

CREATE TABLE health_funds (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,            -- Medibank, Bupa, HCF, nib, HBF, ...
    code VARCHAR(10) NOT NULL,             -- short code, e.g. 'MBP', 'BUP', 'HCF'
    phone VARCHAR(20),
    website VARCHAR(200),
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_health_funds_created_at ON health_funds (created_at);
CREATE INDEX ix_health_funds_updated_at ON health_funds (updated_at);

CREATE TABLE referral_sources (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,            -- Google, Friend or family, Health fund, GP referral, ...
    kind VARCHAR(30) NOT NULL,             -- online, word_of_mouth, professional, advertising, other
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_referral_sources_created_at ON referral_sources (created_at);
CREATE INDEX ix_referral_sources_updated_at ON referral_sources (updated_at);

CREATE TABLE third_parties (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,            -- Department of Veterans' Affairs, icare NSW, WorkSafe Victoria, ...
    kind VARCHAR(30) NOT NULL,             -- government, workers_compensation, insurer, employer, other
    contact_name VARCHAR(100),
    phone VARCHAR(20),
    email VARCHAR(200),
    address_line VARCHAR(200),
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_third_parties_created_at ON third_parties (created_at);
CREATE INDEX ix_third_parties_updated_at ON third_parties (updated_at);

-- ---------------------------------------------------------------- patients

CREATE TABLE patients (
    id INTEGER PRIMARY KEY,
    title VARCHAR(10),                     -- Mr, Mrs, Ms, Miss, Dr, Mstr
    first_name VARCHAR(60) NOT NULL,
    last_name VARCHAR(60) NOT NULL,
    preferred_name VARCHAR(60),
    date_of_birth DATE,
    gender VARCHAR(20),                    -- female, male, non_binary, not_stated
    email VARCHAR(200),
    mobile_phone VARCHAR(20),              -- '04xx xxx xxx'
    home_phone VARCHAR(20),
    address_line VARCHAR(200),
    suburb VARCHAR(100),
    state VARCHAR(3),
    postcode VARCHAR(4),
    health_fund_id INTEGER,                -- private health insurer, if any
    health_fund_member_number VARCHAR(20),
    medicare_number VARCHAR(11),           -- 10 digits
    medicare_irn VARCHAR(1),               -- individual reference number on the card
    dva_number VARCHAR(12),                -- Veterans' Affairs file number, if any
    third_party_id INTEGER,                -- default third-party payer (DVA, WorkCover, ...)
    referral_source_id INTEGER,
    practitioner_id INTEGER,               -- primary (usual) practitioner
    location_id INTEGER NOT NULL,          -- home location
    sms_opt_in BOOLEAN NOT NULL,
    email_opt_in BOOLEAN NOT NULL,
    active BOOLEAN NOT NULL,
    deceased BOOLEAN NOT NULL,
    notes TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_patients_health_fund_id ON patients (health_fund_id);
CREATE INDEX ix_patients_third_party_id ON patients (third_party_id);
CREATE INDEX ix_patients_referral_source_id ON patients (referral_source_id);
CREATE INDEX ix_patients_practitioner_id ON patients (practitioner_id);
CREATE INDEX ix_patients_location_id ON patients (location_id);
CREATE INDEX ix_patients_date_of_birth ON patients (date_of_birth);
CREATE INDEX ix_patients_last_name ON patients (last_name, first_name);
CREATE INDEX ix_patients_created_at ON patients (created_at);
CREATE INDEX ix_patients_updated_at ON patients (updated_at);

-- ---------------------------------------------------------------- scheduling

CREATE TABLE appointment_statuses (
    id INTEGER PRIMARY KEY,
    name VARCHAR(40) NOT NULL,             -- Booked, Confirmed, Arrived, In Chair, Completed, Cancelled, Failed to Attend
    code VARCHAR(20) NOT NULL,             -- booked, confirmed, arrived, in_chair, completed, cancelled, no_show
    is_completed BOOLEAN NOT NULL,         -- the visit happened (counts as a visit)
    is_cancelled BOOLEAN NOT NULL,         -- cancelled or failed to attend (no visit)
    sort_order INTEGER NOT NULL,
    colour VARCHAR(7),
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_appointment_statuses_created_at ON appointment_statuses (created_at);
CREATE INDEX ix_appointment_statuses_updated_at ON appointment_statuses (updated_at);

CREATE TABLE appointment_types (
    id INTEGER PRIMARY KEY,
    name VARCHAR(60) NOT NULL,             -- Check-up & Clean, New Patient Exam, Filling, Root Canal, Emergency, ...
    default_duration_minutes INTEGER NOT NULL,
    colour VARCHAR(7),
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_appointment_types_created_at ON appointment_types (created_at);
CREATE INDEX ix_appointment_types_updated_at ON appointment_types (updated_at);

CREATE TABLE appointments (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    practitioner_id INTEGER NOT NULL,
    location_id INTEGER NOT NULL,
    appointment_type_id INTEGER NOT NULL,
    status_id INTEGER NOT NULL,            -- appointment_statuses.id
    start_time DATETIME NOT NULL,          -- practice-local wall clock
    end_time DATETIME NOT NULL,            -- practice-local wall clock
    duration_minutes INTEGER NOT NULL,
    chair VARCHAR(20),                     -- surgery / chair label
    is_new_patient BOOLEAN NOT NULL,
    confirmed BOOLEAN NOT NULL,            -- the patient confirmed (SMS reply, phone)
    arrived_at DATETIME,                   -- practice-local; null until the patient arrives
    booked_by_user_id INTEGER,
    recall_id INTEGER,                     -- set when booked from a recall
    notes TEXT,
    created_at DATETIME NOT NULL,          -- UTC; when it was booked
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_appointments_patient_id ON appointments (patient_id);
CREATE INDEX ix_appointments_practitioner_id ON appointments (practitioner_id);
CREATE INDEX ix_appointments_location_id ON appointments (location_id);
CREATE INDEX ix_appointments_appointment_type_id ON appointments (appointment_type_id);
CREATE INDEX ix_appointments_status_id ON appointments (status_id);
CREATE INDEX ix_appointments_start_time ON appointments (start_time);
CREATE INDEX ix_appointments_created_at ON appointments (created_at);
CREATE INDEX ix_appointments_updated_at ON appointments (updated_at);

CREATE TABLE cancellations (
    id INTEGER PRIMARY KEY,
    appointment_id INTEGER NOT NULL,
    patient_id INTEGER NOT NULL,
    cancelled_at DATETIME NOT NULL,        -- practice-local wall clock
    cancelled_by VARCHAR(20) NOT NULL,     -- patient, practice
    reason VARCHAR(200),
    notice_hours INTEGER NOT NULL,         -- whole hours between cancellation and the appointment start
    rebooked BOOLEAN NOT NULL,
    rebooked_appointment_id INTEGER,
    cancellation_fee DECIMAL(12,2) NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_cancellations_appointment_id ON cancellations (appointment_id);
CREATE INDEX ix_cancellations_patient_id ON cancellations (patient_id);
CREATE INDEX ix_cancellations_cancelled_at ON cancellations (cancelled_at);
CREATE INDEX ix_cancellations_created_at ON cancellations (created_at);
CREATE INDEX ix_cancellations_updated_at ON cancellations (updated_at);

CREATE TABLE waitlist (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    practitioner_id INTEGER,               -- null: any practitioner
    location_id INTEGER NOT NULL,
    appointment_type_id INTEGER,
    requested_date DATE NOT NULL,          -- earliest date the patient wants
    preferred_time VARCHAR(20),            -- morning, afternoon, any
    priority INTEGER NOT NULL,             -- 1 urgent, 2 soon, 3 flexible
    status VARCHAR(20) NOT NULL,           -- waiting, offered, booked, removed
    appointment_id INTEGER,                -- the appointment booked from the waitlist
    notes TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_waitlist_patient_id ON waitlist (patient_id);
CREATE INDEX ix_waitlist_practitioner_id ON waitlist (practitioner_id);
CREATE INDEX ix_waitlist_location_id ON waitlist (location_id);
CREATE INDEX ix_waitlist_requested_date ON waitlist (requested_date);
CREATE INDEX ix_waitlist_created_at ON waitlist (created_at);
CREATE INDEX ix_waitlist_updated_at ON waitlist (updated_at);

CREATE TABLE reminders (
    id INTEGER PRIMARY KEY,
    appointment_id INTEGER NOT NULL,
    patient_id INTEGER NOT NULL,
    channel VARCHAR(10) NOT NULL,          -- sms, email
    recipient VARCHAR(200) NOT NULL,       -- mobile number or email address
    sent_at DATETIME NOT NULL,             -- UTC
    status VARCHAR(20) NOT NULL,           -- sent, delivered, failed, confirmed
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_reminders_appointment_id ON reminders (appointment_id);
CREATE INDEX ix_reminders_patient_id ON reminders (patient_id);
CREATE INDEX ix_reminders_sent_at ON reminders (sent_at);
CREATE INDEX ix_reminders_created_at ON reminders (created_at);
CREATE INDEX ix_reminders_updated_at ON reminders (updated_at);

CREATE TABLE schedule_templates (
    id INTEGER PRIMARY KEY,
    practitioner_id INTEGER NOT NULL,
    location_id INTEGER NOT NULL,
    day_of_week INTEGER NOT NULL,          -- ISO: 1 Monday ... 7 Sunday
    start_time VARCHAR(5) NOT NULL,        -- 'HH:MM', practice-local
    end_time VARCHAR(5) NOT NULL,          -- 'HH:MM', practice-local
    slot_minutes INTEGER NOT NULL,
    effective_from DATE NOT NULL,
    effective_to DATE,                     -- null: open-ended
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_schedule_templates_practitioner_id ON schedule_templates (practitioner_id);
CREATE INDEX ix_schedule_templates_location_id ON schedule_templates (location_id);
CREATE INDEX ix_schedule_templates_effective_from ON schedule_templates (effective_from);
CREATE INDEX ix_schedule_templates_created_at ON schedule_templates (created_at);
CREATE INDEX ix_schedule_templates_updated_at ON schedule_templates (updated_at);

-- ---------------------------------------------------------------- recalls

CREATE TABLE recall_types (
    id INTEGER PRIMARY KEY,
    name VARCHAR(60) NOT NULL,             -- 6-Month Check-up, Annual Exam, Periodontal Maintenance, ...
    interval_months INTEGER NOT NULL,
    description VARCHAR(255),
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_recall_types_created_at ON recall_types (created_at);
CREATE INDEX ix_recall_types_updated_at ON recall_types (updated_at);

CREATE TABLE recalls (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    recall_type_id INTEGER NOT NULL,
    practitioner_id INTEGER,
    location_id INTEGER NOT NULL,
    due_date DATE NOT NULL,
    status VARCHAR(20) NOT NULL,           -- pending, booked, completed, cancelled
    appointment_id INTEGER,                -- the appointment booked for it
    completed_date DATE,
    last_reminder_at DATETIME,             -- UTC
    reminder_count INTEGER NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_recalls_patient_id ON recalls (patient_id);
CREATE INDEX ix_recalls_recall_type_id ON recalls (recall_type_id);
CREATE INDEX ix_recalls_practitioner_id ON recalls (practitioner_id);
CREATE INDEX ix_recalls_location_id ON recalls (location_id);
CREATE INDEX ix_recalls_due_date ON recalls (due_date);
CREATE INDEX ix_recalls_completed_date ON recalls (completed_date);
CREATE INDEX ix_recalls_created_at ON recalls (created_at);
CREATE INDEX ix_recalls_updated_at ON recalls (updated_at);

-- ---------------------------------------------------------------- clinical

CREATE TABLE service_items (
    id INTEGER PRIMARY KEY,
    item_number VARCHAR(5) NOT NULL,       -- ADA Australian Schedule item, e.g. '011', '114', '121', '322', '531'
    description VARCHAR(200) NOT NULL,
    category VARCHAR(60) NOT NULL,         -- Diagnostic, Preventive, Periodontics, Oral Surgery, Endodontics, Restorative, Prosthodontics, Orthodontics, General
    default_fee DECIMAL(12,2) NOT NULL,
    gst BOOLEAN NOT NULL,                  -- GST applies (most dental services are GST-free)
    default_duration_minutes INTEGER,
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_service_items_item_number ON service_items (item_number);
CREATE INDEX ix_service_items_created_at ON service_items (created_at);
CREATE INDEX ix_service_items_updated_at ON service_items (updated_at);

CREATE TABLE fee_schedules (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,            -- Standard, Pensioner, DVA, Health fund preferred provider, ...
    health_fund_id INTEGER,                -- set for a fund's preferred-provider schedule
    effective_from DATE NOT NULL,
    effective_to DATE,
    is_default BOOLEAN NOT NULL,
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_fee_schedules_health_fund_id ON fee_schedules (health_fund_id);
CREATE INDEX ix_fee_schedules_effective_from ON fee_schedules (effective_from);
CREATE INDEX ix_fee_schedules_created_at ON fee_schedules (created_at);
CREATE INDEX ix_fee_schedules_updated_at ON fee_schedules (updated_at);

CREATE TABLE fee_schedule_items (
    id INTEGER PRIMARY KEY,
    fee_schedule_id INTEGER NOT NULL,
    service_item_id INTEGER NOT NULL,
    fee DECIMAL(12,2) NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_fee_schedule_items_fee_schedule_id ON fee_schedule_items (fee_schedule_id);
CREATE INDEX ix_fee_schedule_items_service_item_id ON fee_schedule_items (service_item_id);
CREATE INDEX ix_fee_schedule_items_created_at ON fee_schedule_items (created_at);
CREATE INDEX ix_fee_schedule_items_updated_at ON fee_schedule_items (updated_at);

CREATE TABLE treatment_plans (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    practitioner_id INTEGER NOT NULL,
    location_id INTEGER NOT NULL,
    title VARCHAR(200) NOT NULL,
    status VARCHAR(20) NOT NULL,           -- proposed, accepted, in_progress, completed, declined
    plan_date DATE NOT NULL,               -- presented to the patient
    accepted_date DATE,
    estimated_total DECIMAL(12,2) NOT NULL,
    notes TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_treatment_plans_patient_id ON treatment_plans (patient_id);
CREATE INDEX ix_treatment_plans_practitioner_id ON treatment_plans (practitioner_id);
CREATE INDEX ix_treatment_plans_location_id ON treatment_plans (location_id);
CREATE INDEX ix_treatment_plans_plan_date ON treatment_plans (plan_date);
CREATE INDEX ix_treatment_plans_accepted_date ON treatment_plans (accepted_date);
CREATE INDEX ix_treatment_plans_created_at ON treatment_plans (created_at);
CREATE INDEX ix_treatment_plans_updated_at ON treatment_plans (updated_at);

CREATE TABLE treatment_plan_items (
    id INTEGER PRIMARY KEY,
    treatment_plan_id INTEGER NOT NULL,
    service_item_id INTEGER NOT NULL,
    item_number VARCHAR(5) NOT NULL,
    tooth VARCHAR(4),                      -- FDI notation, e.g. '16', '36'; null for whole-mouth items
    surface VARCHAR(5),                    -- e.g. 'MOD', 'O', 'DL'
    quantity INTEGER NOT NULL,
    fee DECIMAL(12,2) NOT NULL,
    sequence_number INTEGER NOT NULL,      -- order within the plan
    status VARCHAR(20) NOT NULL,           -- planned, completed, declined
    treatment_id INTEGER,                  -- the completed treatment
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_treatment_plan_items_treatment_plan_id ON treatment_plan_items (treatment_plan_id);
CREATE INDEX ix_treatment_plan_items_service_item_id ON treatment_plan_items (service_item_id);
CREATE INDEX ix_treatment_plan_items_created_at ON treatment_plan_items (created_at);
CREATE INDEX ix_treatment_plan_items_updated_at ON treatment_plan_items (updated_at);

CREATE TABLE treatments (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    practitioner_id INTEGER NOT NULL,
    location_id INTEGER NOT NULL,
    appointment_id INTEGER,
    service_item_id INTEGER NOT NULL,
    treatment_plan_item_id INTEGER,
    item_number VARCHAR(5) NOT NULL,       -- copied from the service item at the time of treatment
    tooth VARCHAR(4),
    surface VARCHAR(5),
    quantity INTEGER NOT NULL,
    treatment_date DATE NOT NULL,
    fee DECIMAL(12,2) NOT NULL,            -- line total charged (quantity included), GST-inclusive
    gst DECIMAL(12,2) NOT NULL,
    invoice_id INTEGER,                    -- null until invoiced
    notes TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_treatments_patient_id ON treatments (patient_id);
CREATE INDEX ix_treatments_practitioner_id ON treatments (practitioner_id);
CREATE INDEX ix_treatments_location_id ON treatments (location_id);
CREATE INDEX ix_treatments_appointment_id ON treatments (appointment_id);
CREATE INDEX ix_treatments_service_item_id ON treatments (service_item_id);
CREATE INDEX ix_treatments_invoice_id ON treatments (invoice_id);
CREATE INDEX ix_treatments_treatment_date ON treatments (treatment_date);
CREATE INDEX ix_treatments_created_at ON treatments (created_at);
CREATE INDEX ix_treatments_updated_at ON treatments (updated_at);

-- ---------------------------------------------------------------- financial

CREATE TABLE invoices (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    practitioner_id INTEGER NOT NULL,
    location_id INTEGER NOT NULL,
    third_party_id INTEGER,                -- billed to DVA, WorkCover, an insurer, ...
    invoice_number VARCHAR(20) NOT NULL,
    invoice_date DATE NOT NULL,
    due_date DATE NOT NULL,
    total DECIMAL(12,2) NOT NULL,          -- GST-inclusive
    gst DECIMAL(12,2) NOT NULL,
    status VARCHAR(20) NOT NULL,           -- open, part_paid, paid, void
    notes TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_invoices_patient_id ON invoices (patient_id);
CREATE INDEX ix_invoices_practitioner_id ON invoices (practitioner_id);
CREATE INDEX ix_invoices_location_id ON invoices (location_id);
CREATE INDEX ix_invoices_third_party_id ON invoices (third_party_id);
CREATE INDEX ix_invoices_invoice_number ON invoices (invoice_number);
CREATE INDEX ix_invoices_invoice_date ON invoices (invoice_date);
CREATE INDEX ix_invoices_due_date ON invoices (due_date);
CREATE INDEX ix_invoices_created_at ON invoices (created_at);
CREATE INDEX ix_invoices_updated_at ON invoices (updated_at);

CREATE TABLE payment_types (
    id INTEGER PRIMARY KEY,
    name VARCHAR(40) NOT NULL,             -- Cash, EFTPOS, Credit Card, HICAPS, Direct Deposit, Cheque, Medicare Easyclaim, DVA
    code VARCHAR(20) NOT NULL,
    is_electronic BOOLEAN NOT NULL,
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_payment_types_created_at ON payment_types (created_at);
CREATE INDEX ix_payment_types_updated_at ON payment_types (updated_at);

CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    payment_type_id INTEGER NOT NULL,
    location_id INTEGER NOT NULL,
    payment_date DATE NOT NULL,
    amount DECIMAL(12,2) NOT NULL,         -- positive; refunds are negative
    reference VARCHAR(60),                 -- receipt number, HICAPS approval, bank reference
    health_fund_id INTEGER,                -- set for a HICAPS claim paid by a fund
    received_by_user_id INTEGER,
    deposit_id INTEGER,                    -- the bank deposit it was banked in
    notes TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_payments_patient_id ON payments (patient_id);
CREATE INDEX ix_payments_payment_type_id ON payments (payment_type_id);
CREATE INDEX ix_payments_location_id ON payments (location_id);
CREATE INDEX ix_payments_deposit_id ON payments (deposit_id);
CREATE INDEX ix_payments_payment_date ON payments (payment_date);
CREATE INDEX ix_payments_created_at ON payments (created_at);
CREATE INDEX ix_payments_updated_at ON payments (updated_at);

CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    invoice_id INTEGER,
    payment_id INTEGER,
    practitioner_id INTEGER,
    location_id INTEGER NOT NULL,
    transaction_date DATE NOT NULL,
    kind VARCHAR(20) NOT NULL,             -- charge, payment, adjustment, refund
    amount DECIMAL(12,2) NOT NULL,         -- signed: positive raises what the patient owes (charge, refund), negative lowers it (payment, credit adjustment)
    description VARCHAR(255),
    created_by_user_id INTEGER,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_transactions_patient_id ON transactions (patient_id);
CREATE INDEX ix_transactions_invoice_id ON transactions (invoice_id);
CREATE INDEX ix_transactions_payment_id ON transactions (payment_id);
CREATE INDEX ix_transactions_practitioner_id ON transactions (practitioner_id);
CREATE INDEX ix_transactions_location_id ON transactions (location_id);
CREATE INDEX ix_transactions_transaction_date ON transactions (transaction_date);
CREATE INDEX ix_transactions_created_at ON transactions (created_at);
CREATE INDEX ix_transactions_updated_at ON transactions (updated_at);

CREATE TABLE deposits (
    id INTEGER PRIMARY KEY,
    location_id INTEGER NOT NULL,
    payment_type_id INTEGER NOT NULL,
    deposit_date DATE NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    reference VARCHAR(60),                 -- bank deposit or settlement reference
    deposited_by_user_id INTEGER,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_deposits_location_id ON deposits (location_id);
CREATE INDEX ix_deposits_payment_type_id ON deposits (payment_type_id);
CREATE INDEX ix_deposits_deposit_date ON deposits (deposit_date);
CREATE INDEX ix_deposits_created_at ON deposits (created_at);
CREATE INDEX ix_deposits_updated_at ON deposits (updated_at);

CREATE TABLE payment_allocations (
    id INTEGER PRIMARY KEY,
    payment_id INTEGER NOT NULL,
    invoice_id INTEGER NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    allocated_at DATETIME NOT NULL,        -- UTC
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_payment_allocations_payment_id ON payment_allocations (payment_id);
CREATE INDEX ix_payment_allocations_invoice_id ON payment_allocations (invoice_id);
CREATE INDEX ix_payment_allocations_allocated_at ON payment_allocations (allocated_at);
CREATE INDEX ix_payment_allocations_created_at ON payment_allocations (created_at);
CREATE INDEX ix_payment_allocations_updated_at ON payment_allocations (updated_at);

CREATE TABLE discounts (
    id INTEGER PRIMARY KEY,
    invoice_id INTEGER,                    -- null: an account-level credit
    patient_id INTEGER NOT NULL,
    discount_date DATE NOT NULL,
    amount DECIMAL(12,2) NOT NULL,         -- positive: reduces what is owed
    kind VARCHAR(30) NOT NULL,             -- pensioner, health_fund_gap, staff, family, courtesy, write_off
    reason VARCHAR(200),
    approved_by_user_id INTEGER,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_discounts_invoice_id ON discounts (invoice_id);
CREATE INDEX ix_discounts_patient_id ON discounts (patient_id);
CREATE INDEX ix_discounts_discount_date ON discounts (discount_date);
CREATE INDEX ix_discounts_created_at ON discounts (created_at);
CREATE INDEX ix_discounts_updated_at ON discounts (updated_at);

-- ---------------------------------------------------------------- business operations

CREATE TABLE expense_categories (
    id INTEGER PRIMARY KEY,
    name VARCHAR(60) NOT NULL,             -- Dental Supplies, Laboratory Fees, Rent, Wages, Utilities, Equipment, Marketing, ...
    code VARCHAR(20) NOT NULL,             -- chart-of-accounts code
    active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_expense_categories_created_at ON expense_categories (created_at);
CREATE INDEX ix_expense_categories_updated_at ON expense_categories (updated_at);

CREATE TABLE expenses (
    id INTEGER PRIMARY KEY,
    expense_category_id INTEGER NOT NULL,
    location_id INTEGER NOT NULL,
    supplier VARCHAR(100) NOT NULL,        -- Henry Schein Halas, Ivoclar, a dental laboratory, landlord, ...
    expense_date DATE NOT NULL,
    amount DECIMAL(12,2) NOT NULL,         -- GST-inclusive
    gst DECIMAL(12,2) NOT NULL,
    description VARCHAR(255),
    payment_method VARCHAR(30),            -- direct_debit, credit_card, bank_transfer, cash
    supplier_invoice_number VARCHAR(40),
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_expenses_expense_category_id ON expenses (expense_category_id);
CREATE INDEX ix_expenses_location_id ON expenses (location_id);
CREATE INDEX ix_expenses_expense_date ON expenses (expense_date);
CREATE INDEX ix_expenses_created_at ON expenses (created_at);
CREATE INDEX ix_expenses_updated_at ON expenses (updated_at);
