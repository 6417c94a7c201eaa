import KeywardenCore
import Testing
@testable import KeywardenGateway

@Suite("Failover policy")
struct FailoverPolicyTests {
    let policy = FailoverPolicy(maxAttempts: 3, defaultCooldown: .seconds(30), rejectedCooldown: .seconds(60), maximumCooldown: .seconds(3600))

    func failover(_ outcome: FailoverPolicy.Outcome, owned: Bool) -> FailoverPolicy.Failover? {
        if case .failover(let failover) = policy.decide(outcome, owned: owned) { return failover }
        return nil
    }

    @Test("refusals, rate limits and server errors move on; the caller's own mistakes and successes are delivered")
    func failoverStatuses() {
        #expect([401, 403, 429, 500, 502, 503, 529, 599].allSatisfy(FailoverPolicy.triggersFailover))
        #expect(![100, 200, 204, 301, 400, 404, 408, 413, 422, 499, 600, -1, Int.max].contains(where: FailoverPolicy.triggersFailover))
        for status in [200, 201, 302, 400, 404, 409, 413, 422] {
            for verdict in [nil, VerificationStatus.invalid, .rateLimited, .quotaExceeded] {
                #expect(policy.decide(.answered(status: status, verdict: verdict, retryAfter: .seconds(5)), owned: true) == .deliver)
            }
        }
    }

    @Test("a 429 rests the key for its Retry-After, or the default rest without one; nothing is recorded on the key")
    func rateLimitRests() throws {
        let withHeader = try #require(failover(.answered(status: 429, verdict: .rateLimited, retryAfter: .seconds(7)), owned: false))
        #expect(withHeader == .init(reason: "rate_limited", rest: .init(duration: .seconds(7), rateLimited: true, owned: false),
                                    record: nil, checkHealth: false))
        let without = try #require(failover(.answered(status: 429, verdict: .rateLimited, retryAfter: nil), owned: true))
        #expect(without.rest == .init(duration: .seconds(30), rateLimited: true, owned: true))
    }

    @Test("the caller's own key refused with 401 rests for everyone, is recorded invalid, and is probed after the record")
    func ownedRefusalRecorded() throws {
        let invalid = try #require(failover(.answered(status: 401, verdict: .invalid, retryAfter: nil), owned: true))
        #expect(invalid == .init(reason: "invalid", rest: .init(duration: .seconds(60), rateLimited: false, owned: true),
                                 record: .invalid, checkHealth: true))
        let quota = try #require(failover(.answered(status: 429, verdict: .quotaExceeded, retryAfter: nil), owned: true))
        #expect(quota.record == .quotaExceeded && quota.reason == "quota_exceeded" && !quota.checkHealth && quota.rest?.owned == true)
        // A 403 is no proof the key is invalid (the path may be one the key may not use): rest, probe, no record.
        let forbidden = try #require(failover(.answered(status: 403, verdict: .noPermission, retryAfter: nil), owned: true))
        #expect(forbidden == .init(reason: "forbidden", rest: .init(duration: .seconds(60), rateLimited: false, owned: true),
                                   record: nil, checkHealth: true))
        // "Invalid" on a status other than 401 is not recorded as invalid either.
        let oddInvalid = try #require(failover(.answered(status: 403, verdict: .invalid, retryAfter: nil), owned: true))
        #expect(oddInvalid.record == nil && oddInvalid.reason == "server_error" && oddInvalid.rest == nil)
    }

    @Test("a shared key's refusal rests it for the calling workspace only, records nothing, and asks the probe")
    func sharedRefusalNotRecorded() throws {
        for (status, verdict, reason) in [(401, VerificationStatus.invalid, "invalid"), (403, .noPermission, "forbidden"), (402, .quotaExceeded, "none"),
                                          (429, .quotaExceeded, "quota_exceeded")] {
            guard let decided = failover(.answered(status: status, verdict: verdict, retryAfter: nil), owned: false) else {
                #expect(reason == "none", "status \(status) should fail over")
                continue
            }
            #expect(decided == .init(reason: reason, rest: .init(duration: .seconds(60), rateLimited: false, owned: false),
                                     record: nil, checkHealth: true))
        }
    }

    @Test("a 403 that refuses the request's model moves on to the next key without resting or recording the key, owned or shared")
    func modelRefusalMovesOn() throws {
        for owned in [true, false] {
            #expect(failover(.answered(status: 403, verdict: .modelNotFound, retryAfter: nil), owned: owned)
                == .init(reason: "model_not_allowed", rest: nil, record: nil, checkHealth: false))
        }
    }

    @Test("server errors and unreachable vendors move on without resting or recording anything")
    func serverErrorsMoveOn() throws {
        for status in [500, 502, 503, 529] {
            for verdict in [nil, VerificationStatus.unreachable, .valid] {
                #expect(failover(.answered(status: status, verdict: verdict, retryAfter: .seconds(9)), owned: true)
                    == .init(reason: "server_error", rest: nil, record: nil, checkHealth: false))
            }
        }
        for (why, reason) in [(FailoverPolicy.Unreachable.timedOut, "timeout"), (.connectionFailed, "connect"), (.targetRefused, "target_not_allowed")] {
            #expect(failover(.unreachable(why), owned: false) == .init(reason: reason, rest: nil, record: nil, checkHealth: false))
        }
    }

    @Test("a streamed body is sent once: only the first attempt; a replayable one to every candidate the limit allows")
    func attemptsLimited() {
        #expect(policy.mayTry(afterAttempts: 0, bodyReplayable: false))
        #expect(!policy.mayTry(afterAttempts: 1, bodyReplayable: false))
        #expect(policy.mayTry(afterAttempts: 2, bodyReplayable: true))
        #expect(FailoverPolicy(maxAttempts: 0, defaultCooldown: .zero, rejectedCooldown: .zero, maximumCooldown: .zero).maxAttempts == 1)
        #expect(FailoverPolicy(maxAttempts: 1, defaultCooldown: .zero, rejectedCooldown: .zero, maximumCooldown: .seconds(Int64(Int32.max) * 4)).maximumRetryAfterSeconds
            == Int(Int32.max))
    }
}

@Suite("Failover during a rotation")
struct FailoverDuringRotationTests {
    @Test("a refusal of a rotating key's new secret does not rest the key (its old one may serve); the old one's refusal does; a 429 rests it; no verdict on the old secret is recorded")
    func secretsAreJudgedApart() {
        let refusal = FailoverPolicy.Failover(reason: "invalid", rest: .init(duration: .seconds(60), rateLimited: false, owned: true), record: .invalid, checkHealth: true)
        let current = FailoverPolicy.duringRotation(refusal, slot: .current)
        #expect(current.rest == nil && current.record == .invalid && current.checkHealth)
        let previous = FailoverPolicy.duringRotation(refusal, slot: .previous)
        #expect(previous.rest == refusal.rest && previous.record == nil && !previous.checkHealth)
        let limited = FailoverPolicy.Failover(reason: "rate_limited", rest: .init(duration: .seconds(7), rateLimited: true, owned: true), record: nil, checkHealth: false)
        #expect(FailoverPolicy.duringRotation(limited, slot: .previous).rest == limited.rest)
        #expect(FailoverPolicy.duringRotation(limited, slot: .current) == limited)
    }
}

@Suite("Keys a call may try")
struct KeysToTryTests {
    func candidate(_ id: String, _ slot: KeySlot = .current) -> Candidate {
        Candidate(credentialID: id, providerID: "openai", source: .byok, reason: "fallback", model: nil, slot: slot)
    }

    @Test("a rotated key's old secret is part of its key's turn: it takes no place among the keys a call may try")
    func previousSecretTakesNoPlace() {
        let policy = FailoverPolicy(maxAttempts: 3, defaultCooldown: .seconds(30), rejectedCooldown: .seconds(60), maximumCooldown: .seconds(3600))
        let list = [candidate("a"), candidate("a", .previous), candidate("b"), candidate("c"), candidate("d")]
        #expect(policy.keysToTry(list).map(\.credentialID) == ["a", "a", "b", "c"])
        #expect(FailoverPolicy(maxAttempts: 1, defaultCooldown: .seconds(30), rejectedCooldown: .seconds(60), maximumCooldown: .seconds(3600)).keysToTry(list).map(\.slot) == [.current, .previous])
        // An old secret serving alone (its new one known bad) is that key's turn.
        let alone = [candidate("a", .previous), candidate("b"), candidate("c"), candidate("d")]
        #expect(policy.keysToTry(alone).map(\.credentialID) == ["a", "b", "c"])
        #expect(policy.keysToTry([]).isEmpty)
    }
}
