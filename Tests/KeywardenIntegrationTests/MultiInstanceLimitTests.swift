import Foundation
import KeywardenStore
import KeywardenTestSupport
import Logging
import SQLKit
import Testing

/// A workspace's rate limit and budget hold across two real `keywarden serve` processes on one PostgreSQL database,
/// with clients hammering both at once.
@Suite("Limits across instances on PostgreSQL", .serialized, .enabled(if: TestDatabase.postgresAvailable))
struct MultiInstanceLimitTests {
    /// One call's outcome.
    struct Outcome: Sendable {
        let status: Int
        let code: String?
        let retryAfter: String?
        let usage: [String: Int]
    }

    /// `workers` clients per instance, each making `calls` calls one after another: at most `2 × workers` in flight.
    static func hammer(_ rigs: [GatewayRig], token: String, workers: Int, calls: Int, body: [String: Any]) async throws -> [Outcome] {
        let payload = try JSONSerialization.data(withJSONObject: body)
        return try await withThrowingTaskGroup(of: [Outcome].self) { group in
            for rig in rigs {
                for _ in 0..<workers {
                    group.addTask {
                        var outcomes: [Outcome] = []
                        for _ in 0..<calls {
                            let reply = try await TestHTTP.send("POST", rig.base + "/openai/v1/chat/completions", body: payload,
                                                                headers: ["Authorization": "Bearer \(token)", "Content-Type": "application/json"])
                            let json = reply.json
                            outcomes.append(Outcome(status: reply.status, code: json.errorCode, retryAfter: reply.headers["retry-after"],
                                                    usage: json["usage"] as? [String: Int] ?? [:]))
                        }
                        return outcomes
                    }
                }
            }
            var all: [Outcome] = []
            for try await part in group { all += part }
            return all
        }
    }

    /// A and B on one database, the platform's OpenAI key active, and B known to hold it (seen through a probe
    /// workspace, so B first loads the workspaces under test after their limits are set).
    static func instances(environment: [String: String] = [:]) async throws -> (GatewayRig, GatewayRig) {
        let a = try await GatewayRig(environment: environment, vendors: ["openai"], engine: .postgres)
        let b = try await MultiInstanceTests.second(to: a, environment: environment)
        try await a.platformCard("openai", secret: "sk-platform-limits-0700")
        let probe = try await a.workspace("Probe")
        let probeToken = try await a.serviceToken(probe)
        try await b.eventually("B serves on the platform's key") {
            try await b.call("/openai/v1/chat/completions", token: probeToken, json: GatewayRig.chat).headers["x-keywarden-source"] == "platform"
        }
        return (a, b)
    }

    /// Waits, when the minute is more than `margin` seconds old, for the next one to begin (so a burst of a few seconds
    /// falls in one rate window).
    static func startOfAMinute(margin: Double = 40) async throws {
        let second = Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 60)
        if second > margin { try await Task.sleep(for: .milliseconds(Int((60 - second) * 1000) + 300)) }
    }

    /// The workspace's rate windows as PostgreSQL holds them: (minute, requests admitted).
    static func rateWindows(_ url: String, workspace: String) async throws -> [(minute: String, requests: Int)] {
        var logger = Logger(label: "test-rate-windows")
        logger.logLevel = .critical
        let engine = try await PostgresEngine(url: url, timeouts: StoreFixture.databaseTimeouts, logger: logger)
        do {
            let rows = try await engine.read { db in
                try await db.select().columns("minute", "requests").from("rate_windows").where("workspace_id", .equal, workspace)
                    .orderBy("minute").all()
                    .map { (try $0.decode(column: "minute", as: String.self), try $0.decode(column: "requests", as: Int.self)) }
            }
            await engine.close()
            return rows
        } catch {
            await engine.close()
            throw error
        }
    }

    @Test("20 requests a minute on the platform's key hold across two instances hammered at once: the rest are 429 rate_limited with Retry-After")
    func rateLimitAcrossProcesses() async throws {
        let (a, b) = try await Self.instances()
        defer { Task { await b.stop(mocksToo: false); await a.stop() } }
        let ws = try await a.workspace("Limited")
        let token = try await a.serviceToken(ws)
        try await a.api("PATCH", "/api/v1/workspaces/\(ws)/rate-limits", ["requests_per_minute": 20], expect: 200)
        try await Self.startOfAMinute()
        try await a.mocks.clear()

        let before = Date()
        let outcomes = try await Self.hammer([a, b], token: token, workers: 5, calls: 12, body: GatewayRig.chat)  // 120 calls, ≤ 10 in flight
        let elapsed = Date().timeIntervalSince(before)
        let served = outcomes.filter { $0.status == 200 }.count
        let limited = outcomes.filter { $0.status == 429 }
        #expect(served + limited.count == outcomes.count, "only 200 and 429: \(Set(outcomes.map(\.status)))")
        #expect(limited.allSatisfy { $0.code == "rate_limited" && ($0.retryAfter.flatMap(Int.init) ?? 0) >= 1 && ($0.retryAfter.flatMap(Int.init) ?? 99) <= 60 },
                "\(limited.prefix(3).map { "\($0.code ?? "-") \($0.retryAfter ?? "-")" })")

        // Per window, as the instances counted it in the shared rows: never more than the limit; every admission served.
        let windows = try await Self.rateWindows(try #require(a.databaseURL), workspace: ws)
        print("rate limit across instances: \(served) served, \(limited.count) limited in \(String(format: "%.2f", elapsed)) s; windows \(windows)")
        #expect(!windows.isEmpty && windows.allSatisfy { $0.requests <= 20 }, "\(windows)")
        #expect(windows.reduce(0) { $0 + $1.requests } == served, "each admitted attempt was served: \(windows) vs \(served)")
        #expect(served <= 20 * windows.count && served >= 20)
        if windows.count == 1 { #expect(served == 20, "one minute, 120 calls: exactly the limit") }
        #expect(try await a.mocks.requests("openai").count == served, "the vendor heard only the admitted calls")

        // The ledger agrees: every call metered, the admitted ones successful.
        try await a.eventually("every call is metered") {
            (try await a.usage("workspace=\(ws)")["totals"] as? [String: Any])?["requests"] as? Int == outcomes.count
        }
        let totals = try await a.usage("workspace=\(ws)")["totals"] as? [String: Any] ?? [:]
        #expect((totals["requests"] as? Int ?? 0) - (totals["errors"] as? Int ?? 0) == served)
    }

    @Test("a platform budget hammered through two instances: refused with 402 past it, spending over it by at most what the calls in flight cost beyond their holds")
    func budgetAcrossProcesses() async throws {
        // One credit a call plus 0.2 a output token; asking max_tokens 1 makes the hold (1.2) smaller than the cost
        // (the mock answers five words), so a call in flight can settle above its hold: the overshoot the bound is about.
        let prices = #"{"prices": [{"provider": "openai", "model": "*", "per_call": 1, "output_per_million": 200000}]}"#
        let (a, b) = try await Self.instances(environment: ["KEYWARDEN_PRICES": prices])
        defer { Task { await b.stop(mocksToo: false); await a.stop() } }
        let ws = try await a.workspace("Budgeted")
        let token = try await a.serviceToken(ws)
        let limit = 20.0
        try await a.api("PATCH", "/api/v1/workspaces/\(ws)/budget", ["platform_limit_credits": limit], expect: 200)
        try await a.mocks.clear()

        var body = GatewayRig.chat
        body["max_tokens"] = 1
        let workers = 4
        let inFlight = 2 * workers
        let outcomes = try await Self.hammer([a, b], token: token, workers: workers, calls: 6, body: body)  // 48 calls
        let served = outcomes.filter { $0.status == 200 }
        let refused = outcomes.filter { $0.status == 402 }
        #expect(served.count + refused.count == outcomes.count, "only 200 and 402: \(Set(outcomes.map(\.status)))")
        #expect(refused.allSatisfy { $0.code == "budget_exceeded" } && !refused.isEmpty)
        #expect(try await a.mocks.requests("openai").count == served.count, "a refused call never reached the vendor")
        let hold = 1.2
        let costs = served.map { 1 + 0.2 * Double($0.usage["completion_tokens"] ?? 1_000) }
        let dearest = try #require(costs.max())
        #expect(dearest > hold && dearest < 3, "the calls cost more than their holds: \(dearest)")

        // Settled (holds given back, costs written) on both instances, then: the budget's spending and the ledger's.
        var spent = -1.0
        try await a.eventually("every hold is settled and every call metered", timeout: .seconds(20)) {
            let budget = try await a.api("GET", "/api/v1/workspaces/\(ws)/budget", expect: 200)["platform"] as? [String: Any] ?? [:]
            let usage = try await a.usage("workspace=\(ws)&group_by=source")
            spent = budget["spent_credits"] as? Double ?? -1
            return budget["reserved_credits"] as? Double == 0 && (usage["totals"] as? [String: Any])?["requests"] as? Int == outcomes.count
        }
        let ledger = try await a.usage("workspace=\(ws)&group_by=source")
        let platform = ((ledger["groups"] as? [[String: Any]]) ?? []).first { $0["key"] as? String == "platform" }?["credits"] as? Double ?? -1
        print("budget across instances: \(served.count) served, \(refused.count) refused; spent \(spent) of \(limit) (ledger \(platform)); hold \(hold), dearest call \(dearest), \(inFlight) in flight at most")
        #expect(abs(platform - spent) < 0.0005, "the ledger's platform credits are the budget's spending: \(platform) vs \(spent)")
        #expect(abs(costs.reduce(0, +) - platform) < 0.0005, "each call metered at its price: \(costs.reduce(0, +)) vs \(platform)")
        // Overshoot: at most what the calls in flight cost beyond their holds (so well under the calls in flight's worth).
        #expect(spent <= limit + Double(inFlight) * (dearest - hold) + 0.0005, "spent \(spent) over \(limit) by more than \(inFlight) × \(dearest - hold)")
        #expect(spent <= limit + Double(inFlight) * dearest)
        // And the budget was used up, not refused early: a refusal means spent + holds + one more hold passed the limit.
        #expect(spent > limit - hold, "spent \(spent)")
    }
}
