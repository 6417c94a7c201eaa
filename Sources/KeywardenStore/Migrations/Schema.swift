import SQLKit

/// Keywarden's schema, one migration per version. Never edit a released migration: add the next one.
public enum Schema {
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "initial schema", apply: createInitialSchema),
        Migration(version: 2, name: "workspace members", apply: addMembers),
        Migration(version: 3, name: "events, webhooks, deliveries, settings", apply: addNotifications),
        Migration(version: 4, name: "bindings", apply: addBindings),
        Migration(version: 5, name: "usage ledger", apply: addUsage),
        Migration(version: 6, name: "web sessions", apply: addSessions),
        Migration(version: 7, name: "health check leases", apply: addHealthLeases),
        Migration(version: 8, name: "change log, index of keys by last check, fallback engagements", apply: addChangeLog),
        Migration(version: 9, name: "budgets and rate limits", apply: addBudgets),
        Migration(version: 10, name: "key lifecycle: expiry, rotate-by age, staged and previous secrets", apply: addKeyLifecycle),
        Migration(version: 11, name: "plans and their default limits", apply: addPlans),
        Migration(version: 12, name: "budget holds per call, instance heartbeats, usage rows that settle their hold", apply: addBudgetHolds),
        Migration(version: 13, name: "chat routes", apply: addRoutes),
        Migration(version: 14, name: "who pays when a workspace's own keys cannot: platform_fallback", apply: addPlatformFallback),
        Migration(version: 15, name: "usage rows by key, for the request log and the keys table's last use", apply: addUsageByKey),
        Migration(version: 16, name: "keys an exclusive switch turned off, restored by a switch back", apply: addParkedKeys),
        Migration(version: 17, name: "a key per workspace: vault_scope_keys", apply: addScopeKeys),
        Migration(version: 18, name: "each workspace's custody log", apply: addCustodyLog),
    ]

    static let boolean = SQLDataType.custom(SQLRaw("BOOLEAN"))

    @Sendable
    static func createInitialSchema(_ db: any SQLDatabase) async throws {
        // Catalog state a person can change. `*_saved` is false while the value is the seeded one,
        // so a newer catalog may update it; once a person saves it, seeding never touches it again.
        try await db.create(table: "providers")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("display_order", type: .bigint, .notNull)
            .column("display_order_saved", type: boolean, .notNull, .default(false))
            .column("default_model", type: .text)
            .column("default_model_saved", type: boolean, .notNull, .default(false))
            .column("active", type: boolean, .notNull, .default(false))
            .column("created_at", type: .text, .notNull)
            .column("updated_at", type: .text, .notNull)
            .column("updated_by", type: .text)
            .run()

        try await db.create(table: "workspaces")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("name", type: .text, .notNull)
            .column("byok_allowed", type: boolean, .notNull, .default(true))
            .column("exclusive", type: boolean, .notNull, .default(false))
            .column("notification_email", type: .text)
            .column("created_at", type: .text, .notNull)
            .column("updated_at", type: .text, .notNull)
            .run()

        // Keys at both scopes. The secret and the extras live sealed in `vault_secrets`
        // (owner_id = this id); this row keeps only what may be shown: a masked hint and a keyed fingerprint.
        try await db.create(table: "credentials")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("scope", type: .text, .notNull)
            .column("workspace_id", type: .text, .references("workspaces", "id", onDelete: .cascade))
            .column("provider_id", type: .text, .notNull, .references("providers", "id"))
            .column("description", type: .text, .notNull, .default(""))
            .column("default_model", type: .text)
            .column("role", type: .text, .notNull, .default("fallback"))
            .column("weight", type: .bigint, .notNull, .default(1))
            .column("position", type: .bigint, .notNull, .default(0))
            .column("active", type: boolean, .notNull, .default(false))
            .column("status", type: .text, .notNull, .default("unverified"))
            .column("last_verified_at", type: .text)
            .column("last_error", type: .text)
            .column("hint", type: .text, .notNull, .default(""))
            .column("fingerprint", type: .text)
            .column("extras_set", type: .text, .notNull, .default("[]"))
            .column("created_at", type: .text, .notNull)
            .column("created_by", type: .text, .notNull)
            .column("updated_at", type: .text, .notNull)
            .column("updated_by", type: .text, .notNull)
            .run()
        try await db.create(index: "credentials_by_scope").on("credentials").column("workspace_id").column("provider_id").run()
        try await db.create(index: "credentials_by_fingerprint").on("credentials").column("fingerprint").run()

        // Every sealed secret of the product, one row each: credential keys and extras, webhook and
        // SMTP secrets, the fingerprint key. Rotation re-wraps `wrapped_key` here and nowhere else.
        try await db.create(table: "vault_secrets")
            .column("scope", type: .text, .notNull)
            .column("owner_id", type: .text, .notNull)
            .column("field", type: .text, .notNull)
            .column("master_key_id", type: .text, .notNull)
            .column("wrapped_key", type: .blob, .notNull)
            .column("ciphertext", type: .blob, .notNull)
            .column("created_at", type: .text, .notNull)
            .column("updated_at", type: .text, .notNull)
            .primaryKey("owner_id", "field")
            .run()
        try await db.create(index: "vault_secrets_by_master_key").on("vault_secrets").column("master_key_id").run()

        try await db.create(table: "vault_rotations")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("target_key_id", type: .text, .notNull)
            .column("started_at", type: .text, .notNull)
            .column("finished_at", type: .text)
            .column("total", type: .bigint, .notNull, .default(0))
            .column("rewrapped", type: .bigint, .notNull, .default(0))
            .column("unreadable", type: .bigint, .notNull, .default(0))
            .run()

        try await db.create(table: "tokens")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("digest", type: .text, .notNull, .unique)
            .column("display_prefix", type: .text, .notNull)
            .column("name", type: .text, .notNull)
            .column("kind", type: .text, .notNull)
            .column("workspace_id", type: .text, .references("workspaces", "id", onDelete: .cascade))
            .column("role", type: .text)
            .column("permissions", type: .text, .notNull, .default("[]"))
            .column("created_at", type: .text, .notNull)
            .column("created_by", type: .text, .notNull)
            .column("last_used_at", type: .text)
            .column("revoked_at", type: .text)
            .run()

        // Append-only and hash-chained: `hash` covers every other column and `prev_hash`.
        try await db.create(table: "audit_log")
            .column("seq", type: .bigint, .primaryKey(autoIncrement: false))
            .column("at", type: .text, .notNull)
            .column("actor", type: .text, .notNull)
            .column("action", type: .text, .notNull)
            .column("target_type", type: .text, .notNull)
            .column("target_id", type: .text)
            .column("workspace_id", type: .text)
            .column("details", type: .text, .notNull, .default("{}"))
            .column("secret_fingerprint", type: .text)
            .column("prev_hash", type: .text, .notNull)
            .column("hash", type: .text, .notNull)
            .run()
        try await db.create(index: "audit_log_by_workspace").on("audit_log").column("workspace_id").column("seq").run()
    }

    @Sendable
    static func addMembers(_ db: any SQLDatabase) async throws {
        try await db.create(table: "members")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("workspace_id", type: .text, .notNull, .references("workspaces", "id", onDelete: .cascade))
            .column("name", type: .text, .notNull)
            .column("role", type: .text, .notNull)
            .column("created_at", type: .text, .notNull)
            .column("created_by", type: .text, .notNull)
            .column("revoked_at", type: .text)
            .run()
        try await db.create(index: "members_by_workspace").on("members").column("workspace_id").run()
        try await db.alter(table: "tokens")
            .column("member_id", type: .text, .references("members", "id", onDelete: .cascade))
            .run()
        try await db.create(index: "tokens_by_workspace").on("tokens").column("workspace_id").run()
    }

    @Sendable
    static func addNotifications(_ db: any SQLDatabase) async throws {
        // Events are recorded in the transaction that causes them, with one delivery row per
        // destination (an outbox): a crash between recording and delivering loses nothing.
        try await db.create(table: "events")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("kind", type: .text, .notNull)
            .column("workspace_id", type: .text)
            .column("credential_id", type: .text)
            .column("provider_id", type: .text)
            .column("payload", type: .text, .notNull)
            .column("created_at", type: .text, .notNull)
            .run()
        try await db.create(index: "events_by_workspace").on("events").column("workspace_id").column("created_at").run()

        try await db.create(table: "webhooks")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("workspace_id", type: .text, .references("workspaces", "id", onDelete: .cascade))
            .column("url", type: .text, .notNull)
            .column("description", type: .text, .notNull, .default(""))
            .column("events", type: .text, .notNull, .default("[]"))
            .column("active", type: boolean, .notNull, .default(true))
            .column("created_at", type: .text, .notNull)
            .column("created_by", type: .text, .notNull)
            .run()

        try await db.create(table: "deliveries")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("event_id", type: .text, .notNull, .references("events", "id", onDelete: .cascade))
            .column("channel", type: .text, .notNull)
            .column("target", type: .text, .notNull)
            .column("status", type: .text, .notNull, .default("pending"))
            .column("attempts", type: .bigint, .notNull, .default(0))
            .column("next_attempt_at", type: .text, .notNull)
            .column("last_status_code", type: .bigint)
            .column("last_error", type: .text)
            .column("delivered_at", type: .text)
            .column("created_at", type: .text, .notNull)
            .run()
        try await db.create(index: "deliveries_due").on("deliveries").column("status").column("next_attempt_at").run()
        try await db.create(index: "deliveries_by_target").on("deliveries").column("target").column("created_at").run()

        try await db.create(table: "settings")
            .column("key", type: .text, .primaryKey(autoIncrement: false))
            .column("value", type: .text, .notNull)
            .column("updated_at", type: .text, .notNull)
            .column("updated_by", type: .text, .notNull)
            .run()
    }

    @Sendable
    static func addBindings(_ db: any SQLDatabase) async throws {
        // `modality` is "" for a binding that covers every modality of the consumer;
        // `credential_id` NULL means "the provider's main chain" (an explicit no-override).
        try await db.create(table: "bindings")
            .column("workspace_id", type: .text, .notNull, .references("workspaces", "id", onDelete: .cascade))
            .column("consumer", type: .text, .notNull)
            .column("modality", type: .text, .notNull, .default(""))
            .column("credential_id", type: .text, .references("credentials", "id", onDelete: .cascade))
            .column("created_at", type: .text, .notNull)
            .column("created_by", type: .text, .notNull)
            .primaryKey("workspace_id", "consumer", "modality")
            .run()
    }

    @Sendable
    static func addUsage(_ db: any SQLDatabase) async throws {
        // No foreign keys: the ledger outlives the keys and workspaces it names.
        try await db.create(table: "usage")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("at", type: .text, .notNull)
            .column("workspace_id", type: .text)
            .column("provider_id", type: .text, .notNull)
            .column("model", type: .text)
            .column("credential_id", type: .text)
            .column("source", type: .text)
            .column("modality", type: .text, .notNull)
            .column("consumer", type: .text)
            .column("status", type: .bigint, .notNull)
            .column("latency_ms", type: .bigint, .notNull)
            .column("tokens_in", type: .bigint)
            .column("tokens_out", type: .bigint)
            .column("characters", type: .bigint)
            .column("milli_credits", type: .bigint, .notNull, .default(0))
            .column("attempts", type: .bigint, .notNull, .default(1))
            .run()
        try await db.create(index: "usage_by_workspace").on("usage").column("workspace_id").column("at").run()
        try await db.create(index: "usage_by_time").on("usage").column("at").run()
    }

    @Sendable
    static func addSessions(_ db: any SQLDatabase) async throws {
        // A browser session of the admin UI: the cookie's digest (never the cookie), the token it signed in with.
        try await db.create(table: "sessions")
            .column("digest", type: .text, .primaryKey(autoIncrement: false))
            .column("token_id", type: .text, .notNull, .references("tokens", "id", onDelete: .cascade))
            .column("csrf", type: .text, .notNull)
            .column("created_at", type: .text, .notNull)
            .column("expires_at", type: .text, .notNull)
            .run()
        try await db.create(index: "sessions_by_token").on("sessions").column("token_id").run()
    }

    @Sendable
    static func addHealthLeases(_ db: any SQLDatabase) async throws {
        // Which instance checks a key this round: the one whose compare-and-set took the lease.
        try await db.alter(table: "credentials").column("health_lease_until", type: .text).run()
    }

    @Sendable
    static func addChangeLog(_ db: any SQLDatabase) async throws {
        // What each committed change touched, in commit order: instances reload only those scopes.
        try await db.create(table: "change_log")
            .column("seq", type: .bigint, .primaryKey(autoIncrement: false))
            .column("scope", type: .text, .notNull)
            .column("at", type: .text, .notNull)
            .run()
        // The health checker reads only the keys due for a check, not every key.
        try await db.create(index: "credentials_by_last_check").on("credentials").column("last_verified_at").run()
        // Which workspaces' calls to a provider are being served by the platform's or the managed key: one row per
        // move, so several instances raise one `fallback.engaged` between them.
        try await db.create(table: "fallback_engagements")
            .column("workspace_id", type: .text, .notNull, .references("workspaces", "id", onDelete: .cascade))
            .column("provider_id", type: .text, .notNull)
            .column("engaged_at", type: .text, .notNull)
            .primaryKey("workspace_id", "provider_id")
            .run()
    }

    @Sendable
    static func addBudgets(_ db: any SQLDatabase) async throws {
        // A workspace's limits per period, in thousandths of a credit (NULL: no limit).
        try await db.alter(table: "workspaces").column("budget_platform_milli", type: .bigint).run()
        try await db.alter(table: "workspaces").column("budget_byok_milli", type: .bigint).run()
        // What a workspace spent and holds reserved per period and scope; every instance updates the same row, so a
        // limit holds across instances. `announced` is the highest threshold (80, 95, 100) announced this period.
        // Rate limits on the platform's keys per minute (NULL: none).
        try await db.alter(table: "workspaces").column("rate_rpm", type: .bigint).run()
        try await db.alter(table: "workspaces").column("rate_tpm", type: .bigint).run()
        // The current minute's requests and tokens per workspace: one row each, replaced when the minute turns.
        try await db.create(table: "rate_windows")
            .column("workspace_id", type: .text, .notNull)
            .column("minute", type: .text, .notNull)
            .column("requests", type: .bigint, .notNull, .default(0))
            .column("tokens", type: .bigint, .notNull, .default(0))
            .primaryKey("workspace_id", "minute")
            .run()
        try await db.create(table: "budget_spend")
            .column("workspace_id", type: .text, .notNull)
            .column("period", type: .text, .notNull)
            .column("scope", type: .text, .notNull)
            .column("spent_milli", type: .bigint, .notNull, .default(0))
            .column("reserved_milli", type: .bigint, .notNull, .default(0))
            .column("announced", type: .bigint, .notNull, .default(0))
            .primaryKey("workspace_id", "period", "scope")
            .run()
    }

    static func addKeyLifecycle(_ db: any SQLDatabase) async throws {
        // Expiry and rotate-by age as the operator set them; when the current secret was stored (its age).
        for (column, type) in [
            ("expires_at", SQLDataType.text), ("rotate_by_days", .bigint), ("key_set_at", .text),
            // key_set_at + rotate_by_days, kept with them, so the sweep finds due keys by an indexed comparison.
            ("rotation_due_at", .text),
            // A staged secret (sealed under the field `api_key.next`) and its test.
            ("staged_hint", .text), ("staged_fingerprint", .text), ("staged_at", .text), ("staged_by", .text),
            ("staged_status", .text), ("staged_error", .text), ("staged_checked_at", .text),
            // The secret a promotion replaced (sealed under `api_key.previous`) and the end of its grace period.
            ("previous_hint", .text), ("previous_until", .text),
            // The date / secret the last expiry and rotation-due notices were sent for.
            ("expiry_notice_for", .text), ("rotation_notice_for", .text),
        ] {
            try await db.alter(table: "credentials").column(column, type: type).run()
        }
        // A stored secret's age starts at its row's creation (the best known).
        try await db.update("credentials").set("key_set_at", to: SQLIdentifier("created_at")).where("hint", .notEqual, "").run()
        // The sweep reads only keys with something due: an ended grace period, an expiry, a rotation.
        try await db.create(index: "credentials_previous_until").on("credentials").column("previous_until").run()
        try await db.create(index: "credentials_expires_at").on("credentials").column("expires_at").run()
        try await db.create(index: "credentials_rotation_due_at").on("credentials").column("rotation_due_at").run()
    }

    static func addPlans(_ db: any SQLDatabase) async throws {
        // A plan's default limits (NULL: none); a workspace's own limit, when set, wins.
        try await db.create(table: "plans")
            .column("name", type: .text, .primaryKey(autoIncrement: false))
            .column("budget_platform_milli", type: .bigint)
            .column("budget_byok_milli", type: .bigint)
            .column("rate_rpm", type: .bigint)
            .column("rate_tpm", type: .bigint)
            .column("budget_cycle", type: .text)
            .column("updated_at", type: .text, .notNull)
            .column("updated_by", type: .text, .notNull)
            .run()
        try await db.alter(table: "workspaces").column("plan", type: .text).run()
        // How a workspace's budget periods run (`month`, `month:15`, `week`, `day`; NULL: its plan's, else calendar months).
        try await db.alter(table: "workspaces").column("budget_cycle", type: .text).run()
    }

    static func addBudgetHolds(_ db: any SQLDatabase) async throws {
        // One row per budget hold of a call in flight (PostgreSQL; a single process holds them in memory): the instance
        // that owns it, so the holds of an instance that died are given back; `reclaimed` when they were, so the call's
        // cost is still counted if its usage row arrives later.
        try await db.create(table: "budget_holds")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("workspace_id", type: .text, .notNull)
            .column("period", type: .text, .notNull)
            .column("scope", type: .text, .notNull)
            .column("amount_milli", type: .bigint, .notNull)
            .column("instance_id", type: .text, .notNull)
            // The database's clock, in seconds since 1970 (a hold younger than the dead-instance time is never reclaimed).
            .column("created_at", type: .bigint, .notNull)
            .column("reclaimed", type: boolean, .notNull, .default(false))
            .run()
        try await db.create(index: "budget_holds_by_instance").on("budget_holds").column("instance_id").run()
        // Each instance's last heartbeat, in the database's own clock (seconds since 1970), so instances need not agree on time.
        try await db.create(table: "instances")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("seen_at", type: .bigint, .notNull)
            .run()
        // The hold a call's usage row settles: the row and the settle are written by one statement, so the budget's
        // spending and the ledger agree after any fault.
        try await db.alter(table: "usage").column("hold_id", type: .text).run()
    }

    @Sendable
    static func addRoutes(_ db: any SQLDatabase) async throws {
        // A chat route: `owner` is a workspace id, or "" for the platform's; `steps` a JSON array of {provider, model}.
        try await db.create(table: "routes")
            .column("owner", type: .text, .notNull)
            .column("name", type: .text, .notNull)
            .column("steps", type: .text, .notNull)
            .column("updated_at", type: .text, .notNull)
            .column("updated_by", type: .text, .notNull)
            .primaryKey("owner", "name")
            .run()
    }

    @Sendable
    static func addPlatformFallback(_ db: any SQLDatabase) async throws {
        // never | on_failure | on_failure_or_budget; NULL: the plan's, else the platform's default.
        try await db.alter(table: "workspaces").column("platform_fallback", type: .text).run()
        try await db.alter(table: "plans").column("platform_fallback", type: .text).run()
    }

    @Sendable
    static func addUsageByKey(_ db: any SQLDatabase) async throws {
        // A key's calls in time order: its last use, its calls this period, the request log filtered by key.
        try await db.create(index: "usage_by_credential").on("usage").column("credential_id").column("at").run()
    }

    @Sendable
    static func addParkedKeys(_ db: any SQLDatabase) async throws {
        // TRUE: turned off by an exclusive-mode switch to another provider (not by a person); a switch back turns it on.
        try await db.alter(table: "credentials").column("parked", type: boolean, .notNull, .default(SQLLiteral.boolean(false))).run()
    }

    @Sendable
    static func addScopeKeys(_ db: any SQLDatabase) async throws {
        // Each scope's key-encryption keys, wrapped by the master key; data keys in `vault_secrets` name theirs
        // (format 2). A rotation of the master key re-wraps these rows only. No foreign key to `workspaces`: the
        // workspace's deletion deletes them itself, in the same transaction (shredding).
        try await db.create(table: "vault_scope_keys")
            .column("id", type: .text, .primaryKey(autoIncrement: false))
            .column("scope", type: .text, .notNull)
            .column("master_key_id", type: .text, .notNull)
            .column("wrapped_key", type: .blob, .notNull)
            .column("created_at", type: .text, .notNull)
            .column("updated_at", type: .text, .notNull)
            .run()
        try await db.create(index: "vault_scope_keys_by_scope").on("vault_scope_keys").column("scope").column("created_at").run()
        try await db.create(index: "vault_scope_keys_by_master_key").on("vault_scope_keys").column("master_key_id").run()
    }

    @Sendable
    static func addCustodyLog(_ db: any SQLDatabase) async throws {
        // One hash chain per workspace (seq 1, 2, 3… within it). Kept when the workspace is deleted, as the audit log is.
        try await db.create(table: "custody_log")
            .column("workspace_id", type: .text, .notNull)
            .column("seq", type: .bigint, .notNull)
            .column("at", type: .text, .notNull)
            .column("use", type: .text, .notNull)
            .column("credential_id", type: .text, .notNull)
            .column("count", type: .bigint, .notNull)
            .column("first_at", type: .text, .notNull)
            .column("last_at", type: .text, .notNull)
            .column("actor", type: .text, .notNull)
            .column("prev_hash", type: .text, .notNull)
            .column("hash", type: .text, .notNull)
            .primaryKey("workspace_id", "seq")
            .run()
    }
}
