import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore
import KeywardenVault

/// `POST /api/v1/resolve` ("which key would pay for this?") and a workspace's bindings.
struct ResolutionController {
    let app: AppServices

    func addRoutes(to api: RouterGroup<KeywardenRequestContext>) {
        api.post("resolve") { request, context -> Response in
            let principal = try context.requirePrincipal()
            let body = try await request.decodeBody(ResolveBody.self, context: context)
            let workspaceID = body.workspace ?? principal.workspaceID
            try ResolutionService.authorizeExplaining(principal, workspaceID: workspaceID)
            let modality = try body.modality.map { text in
                guard let modality = Modality(rawValue: text) else { throw KeywardenError.invalid("modality", "Unknown modality '\(text)'.") }
                return modality
            } ?? .chat
            guard body.provider != nil || body.model != nil else { throw KeywardenError.missing("provider", "Name a provider or a model.") }
            let query = ResolutionQuery(workspaceID: workspaceID, providerID: body.provider, model: body.model, modality: modality,
                                        consumer: body.consumer, allowsOtherProvider: body.provider == nil)
            let candidates: [Candidate]
            switch try await app.resolution.resolve(query) {
            // A rotated key's old secret is its key's own fallback, not another key: listed only when it serves alone.
            case .success(let list): candidates = list.filter { c in c.slot == .current || !list.contains { $0.credentialID == c.credentialID && $0.slot == .current } }
            case .failure(let failure):
                throw KeywardenError(.unprocessable, code: failure.code, message: failure.description)
            }
            let snapshot = try await app.resolution.view(for: workspaceID)
            // The caller's own scope, from its token: a workspace's token owns its workspace's keys, a platform token the
            // platform's (it may ask about a workspace, but never reveal that workspace's key).
            let ownScope: Scope = principal.workspaceID.map(Scope.workspace) ?? .platform
            var secret: String?
            if body.reveal == true {
                guard principal.kind == .service, principal.permissions.contains(.keysReveal) else {
                    throw KeywardenError(.forbidden, code: "forbidden", message: "Revealing a key needs a service token with keys.reveal.", field: "reveal")
                }
                // Only a key of the caller's own scope is ever revealed: never the platform's or the managed key to a workspace.
                guard let own = candidates.first(where: { $0.slot == .current && snapshot.credential($0.credentialID)?.scope == ownScope }) else {
                    throw KeywardenError(.notFound, code: "no_own_key",
                        message: "No key of this workspace would serve this call; the platform's keys are never revealed.", field: "reveal")
                }
                secret = try await reveal(own, snapshot: snapshot, actor: principal.actor)
            }
            let items = candidates.map { candidate -> CandidateBody in
                let key = snapshot.credential(candidate.credentialID)
                // A tenant learns that the platform would pay, not which platform key or how it is described.
                return CandidateBody(candidate: candidate, key: key, showsKey: key?.scope == ownScope)
            }
            return try JSONResponse.make(
                ResolvedBody(provider: candidates[0].providerID, candidates: items, secret: secret),
                headers: [.cacheControl: "no-store"]
            )
        }

        let bindings = api.group("workspaces/:workspace/bindings")
        bindings.get { _, context -> Response in
            let id = try context.parameters.require("workspace")
            return try JSONResponse.make(["items": try await app.resolution.listBindings(workspaceID: id, principal: try context.requirePrincipal()).map(BindingBody.init)])
        }
        bindings.put { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try context.requirePrincipal()
            try principal.authorize(.keysUpdate, inWorkspace: id)
            let binding = try await request.decodeBody(BindBody.self, context: context).bind(in: app.resolution, workspaceID: id, principal: principal)
            return try JSONResponse.make(MessageBody(message: "Binding saved.", item: BindingBody(binding), itemKey: "binding"))
        }
        bindings.delete { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try context.requirePrincipal()
            try principal.authorize(.keysUpdate, inWorkspace: id)
            guard let consumer = request.queryText("consumer") else { throw KeywardenError.missing("consumer") }
            try await app.resolution.unbind(workspaceID: id, consumer: consumer, modality: try Self.modality(request.queryText("modality")), principal: principal)
            return try JSONResponse.make(MessageOnlyBody(message: "Binding removed."))
        }
    }

    static func modality(_ text: String?) throws -> Modality? {
        guard let text, text != "*", !text.isEmpty else { return nil }
        guard let modality = Modality(rawValue: text) else { throw KeywardenError.invalid("modality", "Unknown modality '\(text)'.") }
        return modality
    }

    /// Opens a candidate's key for a service token with `keys.reveal` (audited by the service, with its fingerprint).
    func reveal(_ candidate: Candidate, snapshot: ResolutionView, actor: String) async throws -> String {
        guard let credential = snapshot.credential(candidate.credentialID) else { throw KeywardenError.notFound("key") }
        return try await app.resolution.reveal(credential, source: candidate.source, actor: actor).unprotectedString
    }

    struct ResolveBody: RequestBody {
        static let fields: Set<String> = ["workspace", "provider", "model", "modality", "consumer", "reveal"]
        let workspace: String?
        let provider: String?
        let model: String?
        let modality: String?
        let consumer: String?
        let reveal: Bool?
    }

    struct BindBody: RequestBody {
        static let fields: Set<String> = ["consumer", "modality", "key_id", "target"]
        let consumer: String?
        let modality: String?
        let keyID: String?
        let target: String?

        enum CodingKeys: String, CodingKey {
            case consumer, modality, target
            case keyID = "key_id"
        }

        /// Saves the binding it describes: to `key_id`, or to the provider's main chain with `target: "provider_main"`.
        func bind(in service: ResolutionService, workspaceID: String, principal: Principal) async throws -> Binding {
            guard let consumer else { throw KeywardenError.missing("consumer") }
            let modality = try ResolutionController.modality(modality)
            let bound: String?
            switch (keyID, target) {
            case (let key?, nil): bound = key
            case (nil, "provider_main"?): bound = nil
            case (nil, nil): throw KeywardenError.missing("key_id", "Give key_id, or target: \"provider_main\".")
            default: throw KeywardenError.invalid("target", "Give either key_id or target: \"provider_main\".")
            }
            return try await service.bind(workspaceID: workspaceID, consumer: consumer, modality: modality, keyID: bound, principal: principal)
        }
    }

    struct CandidateBody: Encodable {
        /// The key's id, description and hint only for a key of the caller's own scope.
        let keyID: String?
        let provider: String
        let source: String
        let reason: String
        let model: String?
        let description: String?
        let hint: String?
        /// `previous` when a rotated key's old secret would serve (its new one is known bad); absent otherwise.
        let slot: String?

        init(candidate: Candidate, key: Credential?, showsKey: Bool) {
            slot = candidate.slot == .previous ? "previous" : nil
            keyID = showsKey ? candidate.credentialID : nil
            provider = candidate.providerID
            source = candidate.source.rawValue
            reason = candidate.reason
            model = candidate.model
            description = showsKey ? key?.description : nil
            hint = showsKey ? (candidate.slot == .previous ? key?.lifecycle.previous?.hint : key?.hint) : nil
        }
    }

    struct ResolvedBody: Encodable {
        let provider: String
        let candidates: [CandidateBody]
        /// Only with `reveal` and `keys.reveal`.
        let secret: String?
    }

    struct BindingBody: Encodable {
        let workspaceID: String
        let consumer: String
        let modality: String
        let keyID: String?
        let target: String

        init(_ binding: Binding) {
            workspaceID = binding.workspaceID
            consumer = binding.consumer
            modality = binding.modality?.rawValue ?? "*"
            keyID = binding.credentialID
            target = binding.credentialID == nil ? "provider_main" : "key"
        }
    }
}
