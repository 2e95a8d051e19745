//! Plain-text tables for the commands' reports: what a person reads in a terminal and a
//! script can still split on runs of spaces.

/// Left-aligned columns, two spaces apart, widths in characters.
pub(crate) fn table<const N: usize>(header: [&str; N], rows: &[[&str; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str; N]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(&header)];
    out.extend(rows.iter().map(line));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_line_up_in_characters() {
        let t = table(
            ["ID", "NAME", "JOB TYPE"],
            &[["SAO", "São Paulo", "transcoding"]],
        );
        assert_eq!(t, "ID   NAME       JOB TYPE\nSAO  São Paulo  transcoding");
        assert_eq!(table(["A", "B"], &[]), "A  B");
    }
}
