import KeywardenApp
import Crypto
import Foundation
import KeywardenCore
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import Logging
import SQLKit

// keywarden-bench: figures for the goals the issues set, printed, not asserted.
//   swift run -c release keywarden-bench vault [--iterations N] [--credentials N]
//   swift run -c release keywarden-bench open-loop [--iterations N]   (for perf record)
//   swift run -c release keywarden-bench resolve [--iterations N] [--workspaces N]
//   swift run -c release keywarden-bench scrub [--iterations N]
//   swift run -c release keywarden-bench scrub-answer [--iterations N]
//   keywarden-bench populate --data DIR --credentials N     (for Benchmarks/scale.py)
//   keywarden-bench churn --data DIR [--interval-ms 50]     (for Benchmarks/scale.py)
//   keywarden-bench floors / nio-floors --upstream URL      (for Benchmarks/gateway-cost.sh)
//   keywarden-bench paced-upstream / stream-client          (streams, for Benchmarks/gateway-cost.sh)

let arguments = Array(CommandLine.arguments.dropFirst())

func textOption(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func option(_ name: String, default value: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let parsed = Int(arguments[index + 1]) else { return value }
    return parsed
}

func measure(_ iterations: Int, _ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    for _ in 0..<iterations { try body() }
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func measure(_ iterations: Int, _ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    for _ in 0..<iterations { try await body() }
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func rate(_ iterations: Int, _ seconds: Double) -> String {
    String(format: "%10.0f ops/s  %7.2f µs/op", Double(iterations) / seconds, seconds / Double(iterations) * 1e6)
}

func vaultBenchmark() async throws {
    let iterations = option("--iterations", default: 200_000)
    let credentialCount = option("--credentials", default: 100_000)
    let secret = Secret("sk-proj-" + String(repeating: "A1b2C3d4", count: 6))  // a 56-byte key, the size of a real one
    let plaintext = secret.withPlaintext { Data($0) }
    let context = SecretContext(scope: .workspace("ws_bench"), ownerID: "key_bench", field: "api_key")

    print("Vault: seal and open, \(iterations) iterations each, \(plaintext.count)-byte secret")
    let rawKey = SymmetricKey(size: .bits256)
    let vault = Vault(keyring: .generate())
    let keys = InMemoryScopeKeyDirectory()
    let rawBox = try AES.GCM.seal(plaintext, using: rawKey)
    // What storage holds: nonce ‖ ciphertext ‖ tag. The baseline parses it as the vault parses its own.
    guard let rawStored = rawBox.combined else { fatalError("AES-GCM with a 12-byte nonce has a combined form") }
    let sealed = try await vault.seal(secret, in: context, keys: keys)
    var sink = 0

    // Warm up, then alternate the measurements so both see the same machine state.
    for _ in 0..<10_000 {
        sink &+= try AES.GCM.open(AES.GCM.SealedBox(combined: rawStored), using: rawKey).count
        sink &+= try await vault.open(sealed, in: context, keys: keys).byteCount
    }
    // The floor of any envelope: two opens of the same shape (a 32-byte key, then the secret), each with associated data.
    let associatedData = Data(repeating: 7, count: 48)
    let keyBox = try AES.GCM.seal(Data(repeating: 1, count: 32), using: rawKey, authenticating: associatedData)
    let secretBox = try AES.GCM.seal(plaintext, using: rawKey, authenticating: associatedData)
    guard let keyStored = keyBox.combined, let secretStored = secretBox.combined else { fatalError("combined form") }
    var rawSeal = 0.0, rawOpen = 0.0, vaultSeal = 0.0, vaultOpen = 0.0, twoOpens = 0.0
    let rounds = 5
    let perRound = iterations / rounds
    for _ in 0..<rounds {
        rawSeal += try measure(perRound) { sink &+= try AES.GCM.seal(plaintext, using: rawKey).ciphertext.count }
        vaultSeal += try await measure(perRound) { sink &+= try await vault.seal(secret, in: context, keys: keys).ciphertext.count }
        rawOpen += try measure(perRound) { sink &+= try AES.GCM.open(AES.GCM.SealedBox(combined: rawStored), using: rawKey).count }
        vaultOpen += try await measure(perRound) { sink &+= try await vault.open(sealed, in: context, keys: keys).byteCount }
        twoOpens += try measure(perRound) {
            sink &+= try AES.GCM.open(AES.GCM.SealedBox(combined: keyStored), using: rawKey, authenticating: associatedData).count
            sink &+= try AES.GCM.open(AES.GCM.SealedBox(combined: secretStored), using: rawKey, authenticating: associatedData).count
        }
    }
    let n = perRound * rounds
    print("  raw AES-256-GCM seal   \(rate(n, rawSeal))   (random nonce, one key)")
    print("  vault seal             \(rate(n, vaultSeal))   (\(String(format: "%.2f", vaultSeal / rawSeal))× raw)")
    print("  raw AES-256-GCM open   \(rate(n, rawOpen))   (parse nonce ‖ ciphertext ‖ tag, open)")
    print("  vault open             \(rate(n, vaultOpen))   (\(String(format: "%.2f", vaultOpen / rawOpen))× raw; goal ≤ 2×)")
    print("  two raw opens with AAD \(rate(n, twoOpens))   (\(String(format: "%.2f", twoOpens / rawOpen))× raw: the floor of a two-layer envelope)")
    print("  (a vault open is two AES-GCM opens: the data key under the workspace key, then the secret under the data key)")

    // The custody log's count of a gateway call, where the usage ledger writes its batch (nothing on the call's path).
    let tally = CustodyTally(instanceID: "bench")
    let workspaces = (0..<1000).map { "ws_\($0)" }
    let records = (0..<512).map { index in
        UsageRecord(at: Date(), workspaceID: workspaces[index % workspaces.count], providerID: "openai", model: "m", credentialID: "key_\(index % 2000)",
                    source: .byok, modality: .chat, consumer: nil, status: 200, latencyMilliseconds: 1, counts: UsageCounts(inputTokens: 1),
                    milliCredits: 0, attempts: 1)
    }
    var counted = 0.0
    for _ in 0..<rounds {
        counted += measure(max(1, perRound / 512)) { tally.add(records) }
        _ = tally.take(endedBefore: nil)
    }
    let countedCalls = max(1, perRound / 512) * rounds * 512
    print("  custody count per call \(rate(countedCalls, counted))   (goal ≤ 2 µs; in a usage batch of 512)")

    print("\nRotation: \(credentialCount) stored credentials on SQLite")
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kw-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: directory) }
    var logger = Logger(label: "bench")
    logger.logLevel = .warning
    let configuration = StoreConfiguration(
        dataDirectory: directory, keyringSource: .resolve(environment: [:], dataDirectory: directory), catalog: try ProviderCatalog.load()
    )
    let (store, _) = try await AppServices.open(configuration, createIfMissing: true, logger: logger)
    let fillStart = ContinuousClock.now
    let batch = 500
    for start in stride(from: 0, to: credentialCount, by: batch) {
        let end = min(start + batch, credentialCount)
        try await store.engine.transaction { db in
            let now = Timestamp.now
            var credentialRows: [[any SQLExpression]] = []
            var secretRows: [[any SQLExpression]] = []
            for index in start..<end {
                let id = String(format: "key_bench%08d", index)
                let key = Secret("sk-bench-\(index)-" + String(repeating: "x", count: 40))
                let context = SecretContext(scope: .platform, ownerID: id, field: "api_key")
                let sealed = try await store.vault.seal(key, in: context, on: db)
                credentialRows.append([
                    SQLBind(id), SQLBind("platform"), SQLBind("openai"), SQLBind("bench \(index)"),
                    SQLBind(key.maskedHint), SQLBind(now), SQLBind("bench"), SQLBind(now), SQLBind("bench"),
                ])
                secretRows.append([
                    SQLBind("platform"), SQLBind(id), SQLBind("api_key"), SQLBind(sealed.masterKeyID ?? ""),
                    SQLBind(Data(sealed.wrappedKey)), SQLBind(Data(sealed.ciphertext)), SQLBind(now), SQLBind(now),
                ])
            }
            var credentials = db.insert(into: "credentials")
                .columns("id", "scope", "provider_id", "description", "hint", "created_at", "created_by", "updated_at", "updated_by")
            for row in credentialRows { credentials = credentials.values(row) }
            try await credentials.run()
            var secrets = db.insert(into: "vault_secrets")
                .columns("scope", "owner_id", "field", "master_key_id", "wrapped_key", "ciphertext", "created_at", "updated_at")
            for row in secretRows { secrets = secrets.values(row) }
            try await secrets.run()
        }
    }
    let fill = ContinuousClock.now - fillStart
    print("  stored \(credentialCount) credentials in \(fill)")

    // Workspace keys: one per workspace, as a platform of `--workspaces` workspaces has (rows only: a rotation reads
    // this table, not the workspaces').
    let workspaceCount = option("--workspaces", default: 100_000)
    let keysStart = ContinuousClock.now
    let keyring = store.vault.localKeyring?.keyring
    for start in stride(from: 0, to: workspaceCount, by: 1000) {
        var made: [WrappedScopeKey] = []
        for index in start..<min(start + 1000, workspaceCount) {
            let stored = try await store.vault.custodian.wrap(Secret(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) }),
                                                            id: String(format: "wk-%012x", index), scope: .workspace(String(format: "ws_bench%08d", index)))
            made.append(WrappedScopeKey(id: String(format: "wk-%012x", index), scope: .workspace(String(format: "ws_bench%08d", index)),
                                        masterKeyID: stored.masterKeyID, wrapped: stored.wrapped, createdAt: Timestamp.now))
        }
        try await store.engine.transaction { [made] db in
            for key in made { try await ScopeKeyRepository().insert(key, on: db) }
        }
    }
    print("  stored \(workspaceCount) workspace keys in \(ContinuousClock.now - keysStart) (keyring \(keyring?.active.id ?? "-"))")

    let rotateStart = ContinuousClock.now
    let report = try await store.rotation().run(actor: "bench", batchSize: 1000)
    let rotation = ContinuousClock.now - rotateStart
    let seconds = Double(rotation.components.seconds) + Double(rotation.components.attoseconds) / 1e18
    print("  rotated: \(report.progress.rewrapped) workspace keys re-wrapped in \(String(format: "%.2f", seconds)) s (goal: seconds for 100k workspaces, whatever the number of credentials), \(String(format: "%.0f", Double(report.progress.rewrapped) / seconds)) keys/s")

    // Spot-check that everything still opens.
    let sample = try await store.engine.read { db in
        try await db.select().columns("owner_id", "wrapped_key", "ciphertext").from("vault_secrets")
            .where("field", .equal, "api_key").limit(1000).all()
    }
    var opened = 0
    for row in sample {
        let id = try row.decode(column: "owner_id", as: String.self)
        let sealedRow = SealedSecret(
            wrappedKey: Array(try row.decode(column: "wrapped_key", as: Data.self)),
            ciphertext: Array(try row.decode(column: "ciphertext", as: Data.self))
        )
        if (try? await store.vault.open(sealedRow, in: SecretContext(scope: .platform, ownerID: id, field: "api_key"), keys: store.scopeKeys)) != nil { opened += 1 }
    }
    print("  after rotation \(opened) of \(sample.count) sampled secrets open")
    await store.close()
    if sink == 42 { print("") }
}

/// Resolution in process: the pure `Resolver.resolve` over a snapshot of `--workspaces` workspaces with
/// five keys each (primary, two fallbacks, a pool of two) and the platform's cards, against a baseline
/// that only looks up the workspace's keys and filters them by provider (the least any resolution does).
func resolveBenchmark() {
    let workspaces = option("--workspaces", default: 10_000)
    let iterations = option("--iterations", default: 1_000_000)
    guard let catalog = try? ProviderCatalog.load() else { print("the bundled catalog did not load"); return }
    let now = Date()
    var credentials: [Credential] = []
    for w in 0..<workspaces {
        let roles: [(CredentialRole, Int)] = [(.primary, 0), (.fallback, 1), (.fallback, 2), (.pool, 0), (.pool, 0)]
        for (i, (role, position)) in roles.enumerated() {
            credentials.append(Credential(
                id: "key_\(w)_\(i)", scope: .workspace("ws_\(w)"), providerID: i == 4 ? "anthropic" : "openai", description: "k",
                role: role, weight: 1 + i, position: position, active: true, status: .valid, hint: "sk-…abcd",
                createdAt: now, createdBy: "bench", updatedAt: now, updatedBy: "bench"))
        }
    }
    for provider in ["openai", "anthropic"] {
        credentials.append(Credential(id: "key_platform_\(provider)", scope: .platform, providerID: provider, description: provider,
                                      active: true, status: .valid, hint: "sk-…pl", createdAt: now, createdBy: "bench", updatedAt: now, updatedBy: "bench"))
    }
    let snapshot = ResolutionSnapshot(
        workspaces: Dictionary(uniqueKeysWithValues: (0..<workspaces).map { ("ws_\($0)", .init(byokAllowed: true)) }),
        credentials: credentials,
        platformCards: ["openai": .init(active: true, defaultModel: "gpt-5.4-mini"), "anthropic": .init(active: true, defaultModel: "claude-haiku-4-5")],
        managedDefault: .init(providerID: "anthropic", model: "claude-haiku-4-5")
    )
    let queries = (0..<1024).map { i in
        ResolutionQuery(workspaceID: "ws_\((i &* 7919) % workspaces)", providerID: "openai", modality: .chat, consumer: nil)
    }
    var sink = 0
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    let random: (Int) -> Int = { bound in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(bound))
    }
    print("resolve: \(workspaces) workspaces × 5 keys, \(iterations) resolutions (primary, 2 fallbacks, pool by weight, platform, managed)")
    var baseline = 0.0, resolve = 0.0
    for round in 0..<5 {
        let perRound = iterations / 5
        baseline += measure(perRound) {
            let query = queries[sink & 1023]
            sink &+= snapshot.keys(ofWorkspace: query.workspaceID ?? "").filter { $0.providerID == "openai" }.count
        }
        resolve += measure(perRound) {
            if case .success(let candidates) = Resolver.resolve(queries[(sink &+ round) & 1023], in: snapshot, catalog: catalog, random: random) {
                sink &+= candidates.count
            }
        }
    }
    print("  baseline (lookup+filter) \(rate(iterations, baseline))")
    print("  Resolver.resolve         \(rate(iterations, resolve))   (\(String(format: "%.2f", resolve / baseline))× baseline; goal ≤ 2 µs)")
    if sink == 42 { print("") }
}

/// The secret scrubber over a hostile vendor's answer: a 4 MiB body that echoes a 4 KiB key (raw, masked and
/// JSON-escaped, near the start and the end), scrubbed `--iterations` times with one scrubber.
func scrubBenchmark() {
    let iterations = option("--iterations", default: 5)
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    let printable = Array(" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~".utf8)
    let key = String(decoding: (0..<4096).map { _ -> UInt8 in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return printable[Int((state >> 33) % UInt64(printable.count))]
    }, as: UTF8.self)
    let escaped = (try? JSONSerialization.data(withJSONObject: [key])).map { Array($0.dropFirst(2).dropLast(2)) } ?? []
    let echo = Array("Incorrect API key provided: \(key) (\(key.prefix(12))****\(key.suffix(8))) ".utf8) + escaped
    let filler = Array("{\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\"}}\n".utf8)
    var text = echo
    while text.count < 4 * 1024 * 1024 - echo.count { text += filler }
    text += echo
    text = Array(text.prefix(4 * 1024 * 1024))
    var sink = 0
    var scrubber = SecretScrubber(secrets: [])
    let setup = measure(1) { scrubber = SecretScrubber(secrets: [key]) }
    let seconds = measure(iterations) { sink &+= scrubber.scrub(bytes: text).count }
    let perScrub = seconds / Double(iterations)
    print(String(format: "scrub: %d-byte text, %d-byte key   %8.2f ms/scrub  %8.1f MB/s   (scrubber built in %.2f ms)",
                 text.count, key.utf8.count, perScrub * 1e3, Double(text.count) / perScrub / 1e6, setup * 1e3))
    if sink == 42 { print("") }
}

/// What scrubbing costs an ordinary call: building the call's scrubber (a 164-character OpenAI project key, sent as
/// `Bearer <key>`), and scrubbing an answer that holds no key (a 2 KiB chat completion whole; a 60-event stream fed
/// part by part), against the usage reader over the same bytes (the per-byte work every call already pays).
func scrubAnswerBenchmark() {
    let iterations = option("--iterations", default: 20_000)
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    let key = "sk-proj-" + String(decoding: (0..<156).map { _ -> UInt8 in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return alphabet[Int((state >> 33) % UInt64(alphabet.count))]
    }, as: UTF8.self)
    let sentence = "The gateway forwards the request with the resolved key injected and streams the answer back. "
    let content = String(repeating: sentence, count: 19)
    let whole = Array(#"{"id":"chatcmpl-bench","object":"chat.completion","created":1763800000,"model":"gpt-5.4-mini","choices":[{"index":0,"message":{"role":"assistant","content":"\#(content)"},"finish_reason":"stop"}],"usage":{"prompt_tokens":25,"completion_tokens":412,"total_tokens":437}}"#.utf8)
    let parts = (0..<60).map { index in
        Array(#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1763800000,"model":"gpt-5.4-mini","choices":[{"index":0,"delta":{"content":"word\#(index) and more "},"finish_reason":null}]}"#.utf8) + [0x0A, 0x0A]
    }
    let streamBytes = parts.reduce(0) { $0 + $1.count }
    var sink = 0
    var scrubber = SecretScrubber(secrets: [])
    let build = measure(iterations) { scrubber = SecretScrubber(secrets: [key, "Bearer " + key]); sink &+= scrubber.isEmpty ? 0 : 1 }
    let cache = SecretScrubber.Cache()
    let secrets = [key, "Bearer " + key]
    let cached = measure(iterations) { sink &+= cache.scrubber(for: secrets).isEmpty ? 0 : 1 }
    let readWhole = measure(iterations) {
        var reader = UsageReader(contentType: "application/json")
        reader.feed(whole)
        reader.finish()
        sink &+= reader.counts.outputTokens ?? 0
    }
    let scrubWhole = measure(iterations) { sink &+= scrubber.scrubbedIfNeeded(whole)?.count ?? 1 }
    // The same answer with a line break (`\n`) and a quoted word (`\"`) in every sentence: escapes every ~45 bytes.
    let escaped = Array(String(decoding: whole, as: UTF8.self).replacingOccurrences(of: "streams the answer back. ", with: #"streams the \"answer\" back.\n"#).utf8)
    let readEscaped = measure(iterations) {
        var reader = UsageReader(contentType: "application/json")
        reader.feed(escaped)
        reader.finish()
        sink &+= reader.counts.outputTokens ?? 0
    }
    let scrubEscaped = measure(iterations) { sink &+= scrubber.scrubbedIfNeeded(escaped)?.count ?? 1 }
    let readStream = measure(iterations) {
        var reader = UsageReader(contentType: "text/event-stream")
        for part in parts { reader.feed(part) }
        reader.finish()
        sink &+= reader.counts.outputTokens ?? 0
    }
    let scrubStream = measure(iterations) {
        var stream = scrubber.stream()
        for part in parts {
            switch stream.feed(part) {
            case .prefix(let count): sink &+= count
            case .bytes(let bytes): sink &+= bytes.count
            }
        }
        sink &+= stream.finish().count
    }
    // The strict read of a request body (a call the platform pays for, or under a limit), against the request facts'
    // read of the same body that every call makes.
    let request = Array(#"{"model":"gpt-5.4-mini","stream":true,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"\#(content)"}],"max_tokens":800,"temperature":0.2}"#.utf8)
    let facts = measure(iterations) { sink &+= RequestFacts.read(body: request, path: "/v1/chat/completions").stream ? 1 : 0 }
    let check = measure(iterations) { if case .readable = RequestBodyCheck.check(request) { sink &+= 1 } }
    func perKiB(_ seconds: Double, _ bytes: Int) -> Double { seconds / Double(iterations) / Double(bytes) * 1024 * 1e9 }
    print(String(format: "scrubber for a %d-character key (and Bearer form): built in %.2f µs, from the cache in %.2f µs",
                 key.utf8.count, build / Double(iterations) * 1e6, cached / Double(iterations) * 1e6))
    print(String(format: "whole answer, %d bytes:   usage reader %7.0f ns/KiB   scrubber %7.0f ns/KiB   (%.2f× the reader)",
                 whole.count, perKiB(readWhole, whole.count), perKiB(scrubWhole, whole.count), scrubWhole / readWhole))
    print(String(format: "answer with escapes, %d bytes: usage reader %7.0f ns/KiB   scrubber %7.0f ns/KiB   (%.2f× the reader)",
                 escaped.count, perKiB(readEscaped, escaped.count), perKiB(scrubEscaped, escaped.count), scrubEscaped / readEscaped))
    print(String(format: "stream, 60 parts, %d bytes: usage reader %7.0f ns/KiB   scrubber %7.0f ns/KiB   (%.2f× the reader)",
                 streamBytes, perKiB(readStream, streamBytes), perKiB(scrubStream, streamBytes), scrubStream / readStream))
    print(String(format: "request body, %d bytes: facts read %.2f µs   strict read (RequestBodyCheck) %.2f µs   (%.2f× the facts read)",
                 request.count, facts / Double(iterations) * 1e6, check / Double(iterations) * 1e6, check / facts))
    if sink == 42 { print("") }
}

/// The store of `--data DIR` (SQLite, or `KEYWARDEN_DATABASE_URL`), as the server would open it.
func benchStore() async throws -> (AppServices, OpenReport) {
    guard let path = textOption("--data") else { print("--data DIR is required"); exit(2) }
    let directory = URL(fileURLWithPath: path)
    var logger = Logger(label: "bench")
    logger.logLevel = .warning
    let environment = ProcessInfo.processInfo.environment
    let configuration = StoreConfiguration(
        dataDirectory: directory, keyringSource: .resolve(environment: environment, dataDirectory: directory), catalog: try ProviderCatalog.load(),
        postgresURL: environment["KEYWARDEN_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    )
    return try await AppServices.open(configuration, createIfMissing: true, logger: logger)
}

/// Fills a store with `--credentials N` keys in N/10 workspaces, through the repositories and the vault (each key
/// sealed, each audited), 100 workspaces per transaction. Writes `bench-admin-token` and `bench-workspaces.tsv`
/// (workspace id, its primary key's id) into the data directory for the driver.
func populateBenchmark() async throws {
    let count = option("--credentials", default: 100_000)
    let (app, report) = try await benchStore()
    guard let directory = textOption("--data") else { return }
    if let token = report.adminToken {
        try token.value.write(toFile: directory + "/bench-admin-token", atomically: true, encoding: .utf8)
    }
    let perWorkspace = 10
    let workspaces = max(1, count / perWorkspace)
    let layout: [(provider: String, role: CredentialRole, position: Int)] = [
        ("openai", .primary, 0), ("openai", .fallback, 1), ("openai", .fallback, 2), ("openai", .fallback, 3), ("openai", .fallback, 4),
        ("openai", .pool, 0), ("openai", .pool, 0), ("openai", .pool, 0), ("anthropic", .primary, 0), ("anthropic", .fallback, 1),
    ]
    let started = ContinuousClock.now
    var lines: [String] = []
    lines.reserveCapacity(workspaces)
    let batch = 100
    for first in stride(from: 0, to: workspaces, by: batch) {
        let last = min(first + batch, workspaces)
        let made = try await app.engine.transaction { db -> [String] in
            var made: [String] = []
            for index in first..<last {
                let workspace = try await app.store.workspaces.create(name: "Tenant \(index)", byokAllowed: true, exclusive: false, actor: "bench", on: db)
                var primary = ""
                for (slot, spec) in layout.enumerated() {
                    let secret = Secret("sk-bench-\(index)-\(slot)-" + String(repeating: "x", count: 40))
                    let credential = try await app.store.credentials.insert(NewCredential(
                        scope: .workspace(workspace.id), providerID: spec.provider, description: "key \(slot)", apiKey: secret,
                        role: spec.role, weight: 1 + slot, position: spec.position, active: true), actor: "bench", on: db)
                    if slot == 0 { primary = credential.id }
                    _ = try await app.store.audit.append(AuditEvent(
                        actor: "bench", action: "key.created", targetType: "credential", targetID: credential.id, workspaceID: workspace.id,
                        details: ["provider": spec.provider]), on: db)
                }
                made.append(workspace.id + "\t" + primary)
            }
            return made
        }
        lines.append(contentsOf: made)
        if (first / batch) % 50 == 0 {
            let elapsed = ContinuousClock.now - started
            print("  \(last * perWorkspace) credentials, \(elapsed)")
        }
    }
    try (lines.joined(separator: "\n") + "\n").write(toFile: directory + "/bench-workspaces.tsv", atomically: true, encoding: .utf8)
    print("populated \(workspaces * perWorkspace) credentials in \(workspaces) workspaces in \(ContinuousClock.now - started)")
    await app.close()
}

/// Another process changing the store: every `--interval-ms`, a random workspace's primary key is deactivated or
/// activated again (among the first `--workspaces K`). Prints one line per committed change: `<unix time> <workspace> <active>`.
func churnBenchmark() async throws {
    let interval = option("--interval-ms", default: 50)
    let (app, _) = try await benchStore()
    guard let directory = textOption("--data"), let text = try? String(contentsOfFile: directory + "/bench-workspaces.tsv", encoding: .utf8) else {
        print("no bench-workspaces.tsv: run populate first"); exit(2)
    }
    let allPairs = text.split(separator: "\n").compactMap { line -> (String, String)? in
        let parts = line.split(separator: "\t")
        return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
    }
    let pairs = Array(allPairs.prefix(option("--workspaces", default: allPairs.count)))
    guard !pairs.isEmpty else { return }
    var active: [String: Bool] = [:]
    let limit = option("--changes", default: Int.max)
    var made = 0
    while made < limit {
        let (workspace, key) = pairs[Int.random(in: 0..<pairs.count)]
        let now = !(active[workspace] ?? true)
        if now {
            _ = try await app.keys.activate(workspaceID: workspace, keyID: key, actor: "bench")
        } else {
            _ = try await app.keys.deactivate(workspaceID: workspace, keyID: key, actor: "bench")
        }
        active[workspace] = now
        // Unbuffered, so the driver reads each change as it is made.
        FileHandle.standardOutput.write(Data((String(format: "%.6f", Date().timeIntervalSince1970) + " \(workspace) \(now ? "1" : "0")\n").utf8))
        made += 1
        try await Task.sleep(for: .milliseconds(interval))
    }
    await app.close()
}

switch arguments.first {
case "resolve":
    resolveBenchmark()
case "open-loop":
    let vault = Vault(keyring: .generate())
    let context = SecretContext(scope: .workspace("ws_bench"), ownerID: "key_bench", field: "api_key")
    let keys = InMemoryScopeKeyDirectory()
    let sealed = try await vault.seal(Secret("sk-proj-" + String(repeating: "A1b2C3d4", count: 6)), in: context, keys: keys)
    var sink = 0
    for _ in 0..<option("--iterations", default: 1_000_000) { sink &+= try await vault.open(sealed, in: context, keys: keys).byteCount }
    print(sink)
case "vault":
    try await vaultBenchmark()
case "scrub":
    scrubBenchmark()
case "scrub-answer":
    scrubAnswerBenchmark()
case "translate":
    try translateBenchmark()
case "populate":
    try await populateBenchmark()
case "churn":
    try await churnBenchmark()
case "floors":
    guard let index = arguments.firstIndex(of: "--upstream"), index + 1 < arguments.count else {
        print("usage: keywarden-bench floors --upstream http://127.0.0.1:PORT")
        exit(2)
    }
    try await floorsServer(upstream: arguments[index + 1], port: option("--port", default: 0))
case "nio-floors":
    guard let upstream = textOption("--upstream") else {
        print("usage: keywarden-bench nio-floors --upstream http://127.0.0.1:PORT")
        exit(2)
    }
    try await nioFloorsServer(upstream: upstream, port: option("--port", default: 0))
case "paced-upstream":
    try await pacedUpstreamServer(
        port: option("--port", default: 0), events: option("--events", default: 64),
        pace: .milliseconds(Int64(max(1, option("--pace-ms", default: 20)))))
case "stream-client":
    guard let url = textOption("--url") else {
        print("usage: keywarden-bench stream-client --url http://HOST:PORT/PATH [--header 'Name: value']… [--concurrency N] [--streams-per-connection K]")
        exit(2)
    }
    let headerLines = arguments.indices.filter { arguments[$0] == "--header" && $0 + 1 < arguments.count }.map { arguments[$0 + 1] }
    try await streamClient(
        url: url, headerLines: headerLines, concurrency: option("--concurrency", default: 1),
        streamsPerConnection: option("--streams-per-connection", default: 1), events: option("--events", default: 64),
        paceMilliseconds: option("--pace-ms", default: 20), rampMilliseconds: option("--ramp-ms", default: 0),
        threads: option("--threads", default: 1))
default:
    print("usage: keywarden-bench vault [--iterations N] [--credentials N]   figures for the vault goals")
    print("       keywarden-bench open-loop [--iterations N]                  vault opens only, for a profiler")
    print("       keywarden-bench resolve [--iterations N] [--workspaces N]   resolution in process (goal ≤ 2 µs)")
    print("       keywarden-bench scrub [--iterations N]                      the secret scrubber: a 4 MiB body, a 4 KiB key")
    print("       keywarden-bench translate [--iterations N]                  chat translation between dialects, CPU µs per call")
    print("       keywarden-bench populate --data DIR --credentials N         fills a store for Benchmarks/scale.py")
    print("       keywarden-bench churn --data DIR [--interval-ms 50]         changes a random workspace's key, for Benchmarks/scale.py")
    print("       keywarden-bench floors --upstream URL                       Hummingbird and AsyncHTTPClient alone, for Benchmarks/gateway-cost.sh")
    print("       keywarden-bench nio-floors --upstream URL                   a lean SwiftNIO forwarder and fixed answer, for Benchmarks/gateway-cost.sh")
    print("       keywarden-bench paced-upstream [--events 64] [--pace-ms 20] an SSE upstream, one event per pace, for Benchmarks/gateway-cost.sh")
    print("       keywarden-bench stream-client --url URL [--concurrency N]   times streams' first events and gaps, prints JSON")
    exit(2)
}
