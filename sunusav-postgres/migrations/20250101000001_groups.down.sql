DROP TABLE IF EXISTS contributions;
DROP TABLE IF EXISTS invoices;
DROP TABLE IF EXISTS group_members;
DROP TABLE IF EXISTS tontine_groups;
