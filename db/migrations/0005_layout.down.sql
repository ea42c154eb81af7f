-- Undoes 0005_layout's type and table (the code layer is removed before any downgrade).
DROP TABLE drift.code_layer;
DROP TYPE drift.report_row;
