-- Accounts the operator made provider admins (`scimd admin grant EMAIL`). Signed in, such a
-- person has a provider admin token's rights in every organization: in the console (which lists
-- every organization for them) and through the admin API with their access token.
create table provider_admin (
    account_id  text primary key references account (id) on delete cascade,
    granted_at  bigint not null
);
