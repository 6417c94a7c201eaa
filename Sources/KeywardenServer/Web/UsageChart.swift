import KeywardenCore
import KeywardenStore

/// A stacked bar chart of calls per day, drawn as SVG on the server (no script, no external library).
struct UsageChart {
    let title: String
    let days: [String]
    /// Series names in a stable order; colours follow it (five, then they repeat).
    let series: [String]
    /// Calls by day, then by series.
    let values: [String: [String: Int]]

    /// - Parameter days: every day of the period (days without calls get an empty slot); the rows' days when empty.
    init(title: String, rows: [(day: String, series: String, requests: Int, milliCredits: Int)], days: [String] = []) {
        self.title = title
        self.days = days.isEmpty ? Array(Set(rows.map(\.day))).sorted() : days
        series = Array(Set(rows.map { $0.series.isEmpty ? "none" : $0.series })).sorted()
        var values: [String: [String: Int]] = [:]
        for row in rows { values[row.day, default: [:]][row.series.isEmpty ? "none" : row.series, default: 0] += row.requests }
        self.values = values
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The SVG markup (every text in it escaped).
    var svg: String {
        let width = 720, height = 240, left = 44, bottom = 28, top = 10
        guard !values.isEmpty else {
            return #"<p class="muted">No calls in this period.</p>"#
        }
        let maximum = max(1, days.map { day in values[day, default: [:]].values.reduce(0) { $0.saturatingAdding($1) } }.max() ?? 1)
        let plotHeight = height - bottom - top
        let slot = Double(width - left) / Double(days.count)
        let barWidth = max(2, slot * 0.7)
        var parts = ["<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(Self.escape(title))\">"]
        for tick in maximum >= 4 ? [0, maximum / 2, maximum] : [0, maximum] {
            let y = top + plotHeight - Int(Double(tick) / Double(maximum) * Double(plotHeight))
            parts.append("<line x1=\"\(left)\" x2=\"\(width)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#dfe3ea\"/><text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\" font-size=\"11\" fill=\"#5b6478\">\(tick)</text>")
        }
        for (index, day) in days.enumerated() {
            let x = Double(left) + Double(index) * slot + (slot - barWidth) / 2
            var y = Double(top + plotHeight)
            for (seriesIndex, name) in series.enumerated() {
                let count = values[day]?[name] ?? 0
                guard count > 0 else { continue }
                let h = Double(count) / Double(maximum) * Double(plotHeight)
                y -= h
                func f(_ value: Double) -> String { String((value * 10).rounded() / 10) }
                parts.append("<rect class=\"s\(seriesIndex % 5)\" x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(barWidth))\" height=\"\(f(h))\"><title>\(Self.escape(day)) · \(Self.escape(name)): \(count)</title></rect>")
            }
            if days.count <= 14 || index % max(1, days.count / 7) == 0 {
                // Every other label may give way on a narrow screen, where the chart's text is drawn larger.
                let thinned = days.count > 7 && index % 2 == 1 ? " thin" : ""
                parts.append("<text class=\"day\(thinned)\" x=\"\(Int(x + barWidth / 2))\" y=\"\(height - 8)\" text-anchor=\"middle\" font-size=\"11\" fill=\"#5b6478\">\(Self.escape(String(day.dropFirst(5))))</text>")
            }
        }
        parts.append("</svg>")
        return parts.joined()
    }

    /// The days from `from` to `to` (at most 366), as `YYYY-MM-DD`.
    static func days(from: String, to: String) -> [String] {
        var days: [String] = []
        var day = from
        while day <= to, days.count < 366 {
            days.append(day)
            guard let date = Timestamp.date(day + "T00:00:00.000Z") else { break }
            day = String(Timestamp.string(date.addingTimeInterval(86_400)).prefix(10))
        }
        return days
    }

    /// One series of the legend, with its swatch's colour index.
    struct LegendEntry: Encodable {
        let index: Int
        let name: String
    }

    var legend: [LegendEntry] { series.enumerated().map { LegendEntry(index: $0.offset % 5, name: $0.element) } }
}
