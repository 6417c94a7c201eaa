/// A named, ordered list of provider + model a chat call may be served by: each step's keys are tried in the usual
/// chain order (own keys, then the platform's where the plan allows), then the next step's, translating the call to
/// each step's dialect. A workspace's route overrides the platform's of the same name.
public struct ChatRoute: Sendable, Equatable, Codable {
    /// One step: a provider of the catalog and the model it serves the call with.
    public struct Step: Sendable, Equatable, Codable {
        public var provider: String
        public var model: String

        public init(provider: String, model: String) {
            self.provider = provider
            self.model = model
        }
    }

    /// `lowercase-with-dashes` (a call names it as `route:<name>`; `default` serves a call naming no model).
    public var name: String
    /// The workspace the route belongs to; `nil` for the platform's.
    public var workspaceID: String?
    public var steps: [Step]

    public init(name: String, workspaceID: String?, steps: [Step]) {
        self.name = name
        self.workspaceID = workspaceID
        self.steps = steps
    }

    /// The most steps a route may have.
    public static let maximumSteps = 8
    /// What a call's `model` starts with to name a route.
    public static let modelPrefix = "route:"

    /// The route name a call's `model` names (`route:support`), if it names one.
    public static func name(inModel model: String?) -> String? {
        guard let model, model.hasPrefix(modelPrefix) else { return nil }
        return String(model.dropFirst(modelPrefix.count))
    }

    /// Checks a route against the catalog: its name, 1 to ``maximumSteps`` steps, each a provider that serves chat (one
    /// the gateway can translate to: `isChat`) and a model of 1 to 200 visible characters.
    public func validate(in catalog: ProviderCatalog) throws(KeywardenError) {
        guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D || $0 == 0x5F }),
              name.utf8.first != 0x2D else {
            throw .invalid("name", "A route's name is 1 to 64 lowercase letters, digits, '-' or '_'.")
        }
        guard (1...Self.maximumSteps).contains(steps.count) else {
            throw .invalid("steps", "A route has 1 to \(Self.maximumSteps) steps.")
        }
        for (index, step) in steps.enumerated() {
            guard let provider = catalog.provider(step.provider) else {
                throw .invalid("steps[\(index)].provider", "There is no provider '\(step.provider)'.")
            }
            guard provider.dialect.isChat else {
                throw .invalid("steps[\(index)].provider", "\(provider.displayName) has no chat API a route can use.")
            }
            guard (1...200).contains(step.model.unicodeScalars.count), step.model.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                throw .invalid("steps[\(index)].model", "A model is 1 to 200 visible ASCII characters.")
            }
        }
    }
}
