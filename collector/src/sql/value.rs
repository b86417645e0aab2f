//! Turning one result cell into a Graphite value (or a reason it cannot be one).
//!
//! Integers, floats, decimals and booleans become numbers; text becomes a number only when
//! it is one (`'42'`, SQLite's loose typing); NULL, dates, blobs and other text are not
//! numbers and the caller skips them with a warning. Decoders are chosen by asking each Rust
//! type whether it is compatible with the column's type, never by matching type names.

use rust_decimal::Decimal;
use sqlx::{ColumnIndex, Decode, Row, Type, TypeInfo, ValueRef};

/// One cell, as far as Graphite is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Number(f64),
    Null,
    /// Text that is not a number (kept to name it in warnings, and as a metric name).
    Text(String),
    /// A value of a type that is not a number (its SQL type name).
    Other(String),
}

impl Cell {
    /// Text for a metric-name column: text as is, integers without a fraction.
    pub fn as_name(&self) -> Option<String> {
        match self {
            Cell::Text(s) => Some(s.clone()),
            Cell::Number(v) => {
                let mut buf = Vec::new();
                graphite::protocol::write_value(&mut buf, *v).ok()?;
                String::from_utf8(buf).ok()
            }
            Cell::Null | Cell::Other(_) => None,
        }
    }

    /// Why this cell is not a value, for warnings.
    pub fn describe(&self) -> String {
        match self {
            Cell::Number(v) => v.to_string(),
            Cell::Null => "NULL".into(),
            Cell::Text(s) => {
                let short: String = s.chars().take(40).collect();
                if short.len() < s.len() {
                    format!("non-numeric text {short:?}…")
                } else {
                    format!("non-numeric text {short:?}")
                }
            }
            Cell::Other(t) => format!("a non-numeric {t} value"),
        }
    }
}

/// Try `T` if it is compatible with the column type; `None` when it is not.
fn try_as<'r, R, T>(
    row: &'r R,
    i: usize,
    ty: &<R::Database as sqlx::Database>::TypeInfo,
    to: fn(T) -> Cell,
) -> Option<Cell>
where
    R: Row,
    T: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    if !T::compatible(ty) {
        return None;
    }
    Some(match row.try_get::<T, _>(i) {
        Ok(v) => to(v),
        Err(_) => Cell::Other(ty.name().to_string()),
    })
}

fn number(v: f64) -> Cell {
    if v.is_finite() {
        Cell::Number(v)
    } else {
        Cell::Other(format!("non-finite ({v})"))
    }
}

fn text(s: String) -> Cell {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && !s.trim().is_empty() => Cell::Number(v),
        _ => Cell::Text(s),
    }
}

fn decimal(d: Decimal) -> Cell {
    d.to_string()
        .parse()
        .map(number)
        .unwrap_or(Cell::Other("DECIMAL".into()))
}

/// Declares the per-driver conversion: NULL first, then each candidate type in order.
macro_rules! cell_fn {
    ($fn:ident, $row:ty, [$($t:ty => $to:expr),* $(,)?]) => {
        /// Convert column `i` of a row of this driver.
        pub fn $fn(row: &$row, i: usize) -> Cell {
            let ty = match row.try_get_raw(i) {
                Ok(raw) if raw.is_null() => return Cell::Null,
                Ok(raw) => raw.type_info().into_owned(),
                Err(e) => return Cell::Other(format!("undecodable ({e})")),
            };
            $(
                if let Some(c) = try_as::<_, $t>(row, i, &ty, $to) {
                    return c;
                }
            )*
            Cell::Other(ty.name().to_string())
        }
    };
}

cell_fn!(pg_cell, sqlx::postgres::PgRow, [
    i64 => |v| number(v as f64),
    i32 => |v| number(f64::from(v)),
    i16 => |v| number(f64::from(v)),
    i8 => |v| number(f64::from(v)),
    f64 => number,
    f32 => |v| number(f64::from(v)),
    Decimal => decimal,
    bool => |v| number(if v { 1.0 } else { 0.0 }),
    String => text,
]);

cell_fn!(mysql_cell, sqlx::mysql::MySqlRow, [
    i64 => |v| number(v as f64),
    u64 => |v| number(v as f64),
    f64 => number,
    f32 => |v| number(f64::from(v)),
    Decimal => decimal,
    bool => |v| number(if v { 1.0 } else { 0.0 }),
    String => text,
]);

cell_fn!(sqlite_cell, sqlx::sqlite::SqliteRow, [
    i64 => |v| number(v as f64),
    f64 => number,
    bool => |v| number(if v { 1.0 } else { 0.0 }),
    String => text,
]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_becomes_a_number_only_when_it_is_one() {
        assert_eq!(text("42".into()), Cell::Number(42.0));
        assert_eq!(text(" 1.5 ".into()), Cell::Number(1.5));
        assert_eq!(text("NaN".into()), Cell::Text("NaN".into()));
        assert_eq!(text("inf".into()), Cell::Text("inf".into()));
        assert_eq!(text("".into()), Cell::Text("".into()));
        assert_eq!(text("12 apples".into()), Cell::Text("12 apples".into()));
    }

    #[test]
    fn decimals_and_names() {
        assert_eq!(decimal(Decimal::new(12345, 2)), Cell::Number(123.45));
        assert_eq!(Cell::Number(7.0).as_name().as_deref(), Some("7"));
        assert_eq!(Cell::Text("a.b".into()).as_name().as_deref(), Some("a.b"));
        assert_eq!(Cell::Null.as_name(), None);
        assert_eq!(
            Cell::Other("DATE".into()).describe(),
            "a non-numeric DATE value"
        );
        assert!(Cell::Text("x".repeat(100)).describe().ends_with('…'));
    }

    #[tokio::test]
    async fn sqlite_cells() {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let row = sqlx::query(
            "SELECT 1, 2.5, NULL, 'x', '3', x'00', 9007199254740993, CAST(1 AS BOOLEAN)",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        let cells: Vec<Cell> = (0..8).map(|i| sqlite_cell(&row, i)).collect();
        assert_eq!(
            cells,
            [
                Cell::Number(1.0),
                Cell::Number(2.5),
                Cell::Null,
                Cell::Text("x".into()),
                Cell::Number(3.0),
                Cell::Other("BLOB".into()),
                Cell::Number(9007199254740992.0),
                Cell::Number(1.0),
            ]
        );
    }
}
