import Foundation
@testable import KeywardenProviders
import Testing

@Suite("Reading the fields of a form upload")
struct MultipartFormTests {
    static func form(_ parts: [(disposition: String, value: String)], boundary: String = "kwBoundary7MA4YWxk", end: Bool = true) -> [UInt8] {
        var text = ""
        for part in parts {
            text += "--\(boundary)\r\nContent-Disposition: \(part.disposition)\r\n"
            if part.disposition.contains("filename") { text += "Content-Type: audio/mpeg\r\n" }
            text += "\r\n\(part.value)\r\n"
        }
        if end { text += "--\(boundary)--\r\n" }
        return Array(text.utf8)
    }

    @Test("model and stream are read from text fields (a file part named model is not one); quoted or bare boundary and names")
    func fields() {
        let body = Self.form([(#"form-data; name="file"; filename="a.mp3""#, "\u{1}binary model=x"),
                              (#"form-data; name="model""#, "gpt-4o-transcribe"), ("form-data; name=stream", "true"),
                              (#"form-data; name="language""#, "en")])
        for type in [#"multipart/form-data; boundary=kwBoundary7MA4YWxk"#, #"Multipart/Form-Data; charset=utf-8; boundary="kwBoundary7MA4YWxk""#] {
            #expect(MultipartForm.read(body, contentType: type, names: ["model", "stream"]) == .fields(["model": "gpt-4o-transcribe", "stream": "true"]))
        }
        let fileNamedModel = Self.form([(#"form-data; name="model"; filename="m.txt""#, "whisper-1")])
        #expect(MultipartForm.read(fileNamedModel, contentType: "multipart/form-data; boundary=kwBoundary7MA4YWxk", names: ["model"]) == .fields([:]))
        #expect(MultipartForm.isForm(" multipart/form-data; boundary=x") && !MultipartForm.isForm("application/json") && !MultipartForm.isForm(nil))
    }

    @Test("a field given twice, a part without a name, a field not in UTF-8, a form that does not end, or no boundary: unreadable, named")
    func unreadable() {
        let type = "multipart/form-data; boundary=kwBoundary7MA4YWxk"
        func why(_ body: [UInt8], _ contentType: String = "multipart/form-data; boundary=kwBoundary7MA4YWxk") -> String? {
            if case .unreadable(let why) = MultipartForm.read(body, contentType: contentType, names: ["model", "stream"]) { return why }
            return nil
        }
        #expect(why(Self.form([(#"form-data; name="model""#, "whisper-1"), (#"form-data; name="model""#, "gpt-4o-transcribe")]))?.contains("given twice") == true)
        #expect(why(Self.form([("form-data", "x")]))?.contains("without one name") == true)
        #expect(why(Self.form([(#"form-data; name="model""#, "whisper-1")], end: false))?.contains("does not end") == true)
        var latin1 = Self.form([(#"form-data; name="model""#, "whisper-1")])
        let value = MultipartForm.find(Array("whisper".utf8), in: latin1, from: 0)!
        latin1[value] = 0xE9
        #expect(why(latin1)?.contains("not UTF-8") == true)
        #expect(why(Self.form([(#"form-data; name="model""#, "m")]), "multipart/form-data")?.contains("boundary") == true)
        #expect(why(Array("no delimiter here".utf8), type)?.contains("boundary") == true)
        #expect(why(Self.form([(#"form-data; name="model""#, "m")], boundary: "other"))?.contains("boundary") == true)
        // What a review found parsers read apart: two boundaries, a quoted `;`, two dispositions, `name*=`, a preamble.
        let plain = Self.form([(#"form-data; name="model""#, "whisper-1")])
        #expect(why(plain, "multipart/form-data; boundary=kwBoundary7MA4YWxk; boundary=B")?.contains("boundary") == true)
        #expect(why(Self.form([(#"form-data; name="model"; x="; filename=y""#, "whisper-1")])) != nil)
        #expect(why(Self.form([("form-data; name=\"x\"\r\nContent-Disposition: form-data; name=\"model\"", "gpt-4o")])) != nil)
        #expect(why(Self.form([("form-data; name*=UTF-8''model", "gpt-4o")])) != nil)
        #expect(why(Array("preamble\r\n".utf8) + plain)?.contains("does not open") == true)
    }

    @Test("the boundary search is exact on overlapping patterns and linear on a body built against a naive search")
    func search() {
        #expect(MultipartForm.find(Array("aab".utf8), in: Array("aaab".utf8), from: 0) == 1)
        #expect(MultipartForm.find(Array("abab".utf8), in: Array("abababab".utf8), from: 1) == 2)
        #expect(MultipartForm.find(Array("x".utf8), in: [], from: 0) == nil)
        let needle = [UInt8](repeating: UInt8(ascii: "-"), count: 69) + [UInt8(ascii: "x")]
        let haystack = [UInt8](repeating: UInt8(ascii: "-"), count: 4 * 1024 * 1024)
        let started = ContinuousClock.now
        #expect(MultipartForm.find(needle, in: haystack, from: 0) == nil)
        #expect(ContinuousClock.now - started < .seconds(5), "the search is not linear")
    }
}
