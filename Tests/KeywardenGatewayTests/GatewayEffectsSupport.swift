@testable import KeywardenGateway

extension Gateway {
    /// The gateway with its effects carried out, as the server's service group does (here for the test process's life).
    func carryingOutEffects() -> Gateway {
        let effects = effects
        Task { try? await effects.run() }
        return self
    }
}
