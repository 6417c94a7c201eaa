import KeywardenCore
import NIOCore
import Synchronization
import Testing
@testable import KeywardenProviders

/// A resolver that answers what a test says, and counts its lookups (a name whose answer changes: DNS rebinding).
final class ScriptedResolver: HostResolver, Sendable {
    let answers: [[String]]
    let calls = Mutex(0)

    init(_ answers: [[String]]) { self.answers = answers }

    func resolve(host: String, port: Int) async throws -> [SocketAddress] {
        let call = calls.withLock { value -> Int in defer { value += 1 }; return value }
        return try answers[min(call, answers.count - 1)].map { try SocketAddress(ipAddress: $0, port: port) }
    }
}

@Suite("Egress guard")
struct EgressGuardTests {
    @Test("a name is judged by every address it resolves to, each time it is resolved: one inward address refuses it, and a name that turns inward is refused then")
    func resolvedAddresses() async {
        let rebinding = ScriptedResolver([["93.184.216.34"], ["127.0.0.1"]])
        let egress = EgressGuard(resolver: rebinding)
        guard case .allowed = await egress.check(host: "rebind.example", port: 443) else { Issue.record("the public answer is allowed"); return }
        guard case .refused(.loopback, _) = await egress.check(host: "rebind.example", port: 443) else { Issue.record("the inward answer is refused"); return }

        let mixed = EgressGuard(resolver: ScriptedResolver([["93.184.216.34", "169.254.169.254"]]))
        guard case .refused(.cloudMetadata, _) = await mixed.check(host: "mixed.example", port: 80) else { Issue.record("one metadata address refuses the name"); return }

        let mapped = EgressGuard(resolver: ScriptedResolver([["::ffff:10.0.0.1"]]))
        guard case .refused(.privateNetwork, _) = await mapped.check(host: "mapped.example", port: 80) else { Issue.record("a mapped private address is refused"); return }

        let allowed = EgressGuard(resolver: ScriptedResolver([["127.0.0.1"]]), allowsPrivateTargets: true)
        guard case .allowed = await allowed.check(host: "local.example", port: 80) else { Issue.record("KEYWARDEN_ALLOW_PRIVATE_TARGETS lifts the rule"); return }
    }

    @Test("names internal by definition are refused before any lookup; a URL's spelling is judged before it is saved")
    func names() async {
        let resolver = ScriptedResolver([["93.184.216.34"]])
        let egress = EgressGuard(resolver: resolver)
        guard case .refused = await egress.check(host: "metadata.google.internal", port: 80) else { Issue.record("internal name"); return }
        #expect(resolver.calls.withLock { $0 } == 0)
        #expect(await egress.refusal(forURL: "http://0x7f.1:8080") == .loopback)
        #expect(await egress.refusal(forURL: "https://public.example/v1") == nil)
    }
}
