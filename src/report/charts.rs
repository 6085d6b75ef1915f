//! Charts over the totals sheets. Series address the cells written by [`super::tables`], so
//! the charts show exactly the numbers in the sheet.

use super::tables::Block;
use rust_xlsxwriter::{Chart, ChartType, ColNum, RowNum, Worksheet, XlsxError};

/// Vertical distance between stacked charts: the default chart (480 × 288 px) plus a gap.
const CHART_ROWS: RowNum = 16;

/// A column chart over rows `1..=rows` with the vCenter names of `category_col` as
/// categories and one series per `(header, column)`.
pub(super) fn columns_by_row(
    chart_type: ChartType,
    sheet_name: &str,
    title: &str,
    rows: RowNum,
    category_col: ColNum,
    series: &[(&str, ColNum)],
) -> Chart {
    let mut chart = Chart::new(chart_type);
    chart.title().set_name(title);
    for (name, col) in series {
        chart
            .add_series()
            .set_name(*name)
            .set_categories((sheet_name, 1, category_col, rows, category_col))
            .set_values((sheet_name, 1, *col, rows, *col));
    }
    chart
}

/// A line chart with one series per vCenter block, over a date axis (`x_col`, shown with
/// `x_format`) so that vCenters with different days or hours still line up in time.
pub(super) fn lines_per_vcenter(
    sheet_name: &str,
    title: &str,
    blocks: &[Block<'_>],
    x_col: ColNum,
    x_format: &str,
    y_col: ColNum,
) -> Chart {
    let mut chart = Chart::new(ChartType::Line);
    chart.title().set_name(title);
    chart.x_axis().set_date_axis(true).set_num_format(x_format);
    for block in blocks {
        chart
            .add_series()
            .set_name(block.vcenter)
            .set_categories((sheet_name, block.first, x_col, block.last, x_col))
            .set_values((sheet_name, block.first, y_col, block.last, y_col));
    }
    chart
}

/// Stacks `charts` top to bottom from row 1 of column `col`.
pub(super) fn insert_stacked(
    sheet: &mut Worksheet,
    col: ColNum,
    charts: &[Chart],
) -> Result<(), XlsxError> {
    for (row, chart) in (0..).map(|i| 1 + i * CHART_ROWS).zip(charts) {
        sheet.insert_chart(row, col, chart)?;
    }
    Ok(())
}
