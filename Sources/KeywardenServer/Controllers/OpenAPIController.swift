import Foundation
import Hummingbird
import NIOCore

/// `GET /openapi.yaml`: the OpenAPI 3.1 document of every route, shipped as a resource.
struct OpenAPIController {
    func addRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("/openapi.yaml") { _, _ -> Response in
            guard let document = OpenAPIDocument.text else {
                throw APIError(.internalServerError, code: "openapi_missing", message: "The OpenAPI document is not bundled with this build.")
            }
            return Response(
                status: .ok,
                headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: document))
            )
        }
    }
}

/// The bundled OpenAPI document.
public enum OpenAPIDocument {
    /// The resource bundle's name, beside the executable.
    static let bundleName = "Keywarden_KeywardenServer.resources"

    /// The document's text, or `nil` if the resource bundle is missing.
    public static let text: String? = {
        var directories = [Bundle.main.bundleURL]
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            directories.append(executable.deletingLastPathComponent())
        }
        for directory in directories {
            let url = directory.appendingPathComponent(bundleName).appendingPathComponent("openapi.yaml")
            if let text = try? String(contentsOf: url, encoding: .utf8) { return text }
        }
        return nil
    }()
}
